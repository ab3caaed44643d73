"""The census pipeline: pages, links and sites of the crawl into the census database."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections import defaultdict
from typing import TYPE_CHECKING, Any, Self

from ..db import connect, utcnow
from .items import PageFailure, PageItem, RequisiteItem, SiteAttempt, TrapItem
from .writer import WriterClient

if TYPE_CHECKING:
    from scrapy import Spider

log = logging.getLogger(__name__)

SCOPED_TABLES = ("page_failures", "site_attempts", "sites", "traps", "requisites")
"""Rows of a crawl besides pages and links, replaced when the stage is rerun."""


def alive(attempt: SiteAttempt) -> bool:
    """A site is alive when a start URL ends, after redirects, in a 2xx answer."""
    return attempt.http_status is not None and 200 <= attempt.http_status < 300


def best_attempt(attempts: list[SiteAttempt]) -> SiteAttempt:
    """The start URL that represents the site: alive first, then any answer, bare host first."""

    def rank(a: SiteAttempt) -> tuple[int, int, int]:
        host = a.url.split("/")[2]
        return (
            0 if alive(a) else 1 if a.http_status else 2,
            0 if host == a.domain else 1,
            0 if a.url.startswith("http:") else 1,
        )

    return min(attempts, key=rank)


class CensusPipeline:
    """Writes every item as it comes: an item counts as stored (and Scrapy moves on with
    it) once its transaction is committed, so what was fetched is on disk even if the crawl
    is killed, and a resumed crawl (``CENSUS_RESUME``) reads it back instead of fetching it
    again.  In a crawl the writes run in the writer process (``writer.py``); called directly
    (the distributed crawl's coordinator), here."""

    def __init__(
        self, db_path: str, run_id: int, only: list[str] | None = None, resume: bool = False
    ) -> None:
        self.db_path = db_path
        self.run_id = run_id
        self.only = only or []
        self.resume = resume
        self.conn: sqlite3.Connection | None = None
        self.process: WriterClient | None = None
        """The crawl's writer process, when it writes the rows (``writer.py``)."""

    @classmethod
    def from_crawler(cls, crawler: Any) -> Self:
        from .extensions import writer_for

        s = crawler.settings
        pipeline = cls(s["CENSUS_DB"], s.getint("CENSUS_RUN_ID"), s.getlist("CENSUS_DOMAINS"),
                       s.getbool("CENSUS_RESUME"))
        pipeline.process = writer_for(crawler)
        return pipeline

    def scope(self) -> tuple[str, list[Any]]:
        scope = "run_id = ?"
        params: list[Any] = [self.run_id]
        if self.only:
            scope += f" AND domain IN ({', '.join('?' * len(self.only))})"
            params += self.only
        return scope, params

    def open_spider(self, spider: Spider | None = None) -> None:
        self.conn = connect(self.db_path, check_same_thread=False)
        # durable against the process being killed (WAL), without a disk flush per page
        self.conn.execute("PRAGMA synchronous = NORMAL")
        if self.resume:
            return
        # a rerun of the crawl stage replaces what an earlier attempt of it wrote
        scope, params = self.scope()
        with self.conn:
            for table in SCOPED_TABLES:
                self.conn.execute(f"DELETE FROM {table} WHERE {scope}", params)
            self.conn.execute(
                f"DELETE FROM links WHERE page_id IN (SELECT id FROM pages WHERE {scope})", params
            )
            self.conn.execute(
                f"DELETE FROM page_sources WHERE page_id IN (SELECT id FROM pages WHERE {scope})",
                params,
            )
            self.conn.execute(
                "UPDATE pages SET revisit_of = NULL WHERE revisit_of IN "
                f"(SELECT id FROM pages WHERE {scope})",
                params,
            )
            self.conn.execute(f"DELETE FROM pages WHERE {scope}", params)

    def process_item(self, item: Any, spider: Spider | None = None) -> Any:
        assert self.conn is not None
        if self.process is not None:
            return self.process.store(item)
        with self.conn:
            self.write_item(item)
        return item

    def write_item(self, item: Any) -> None:
        assert self.conn is not None
        if isinstance(item, SiteAttempt):
            self.write_attempt(item)
        elif isinstance(item, PageItem):
            self.write_page(item)
            if item.attempt is not None:
                self.write_attempt(item.attempt)
        elif isinstance(item, PageFailure):
            self.conn.execute(
                "INSERT INTO page_failures (run_id, domain, url, error, failed_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [self.run_id, item.domain, item.url, item.error, utcnow()],
            )
        elif isinstance(item, RequisiteItem):
            warc = item.warc
            self.conn.execute(
                "INSERT INTO requisites (run_id, domain, page_url, url, kind, http_status,"
                " content_type, size, sha256, warc_file, warc_offset, error)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [self.run_id, item.domain, item.page_url, item.url, item.kind,
                 item.http_status, item.content_type, item.size, item.sha256,
                 warc.file if warc else None, warc.offset if warc else None, item.error],
            )
        elif isinstance(item, TrapItem):
            self.conn.execute(
                "INSERT INTO traps (run_id, domain, url, rule, found_on) "
                "VALUES (?, ?, ?, ?, ?)",
                [self.run_id, item.domain, item.url, item.rule, item.found_on],
            )

    def write_attempt(self, item: SiteAttempt) -> None:
        assert self.conn is not None
        self.conn.execute(
            "INSERT INTO site_attempts (run_id, domain, url, final_url, http_status, address,"
            " title, lang, server, tls, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [self.run_id, item.domain, item.url, item.final_url, item.http_status,
             item.address, item.title, item.lang, item.server,
             json.dumps(item.tls) if item.tls is not None else None, item.error],
        )

    def recorded_attempts(self) -> dict[str, list[SiteAttempt]]:
        """Every start URL the crawl of this run recorded, resumed parts included."""
        assert self.conn is not None
        scope, params = self.scope()
        attempts: dict[str, list[SiteAttempt]] = defaultdict(list)
        for row in self.conn.execute(
            "SELECT domain, url, final_url, http_status, address, error, title, lang, server, "
            f"tls FROM site_attempts WHERE {scope} ORDER BY id", params
        ):
            *fields, tls = row
            attempts[row[0]].append(SiteAttempt(*fields, tls=json.loads(tls) if tls else None))
        return attempts

    def write_page(self, item: PageItem) -> None:
        assert self.conn is not None
        warc = item.warc
        revisit_of = warc.revisit_of if warc else None
        text = None if revisit_of else item.text  # stored once, in the page revisited
        row = {
            "run_id": self.run_id,
            "domain": item.domain,
            "url": item.url,
            "http_status": item.http_status,
            "content_type": item.content_type,
            "charset": item.charset,
            "sha256": item.sha256,
            "title": item.title,
            "lang": item.lang,
            "lang_confidence": item.lang_confidence,
            "lang_source": item.lang_source,
            "text": text,
            "depth": item.depth,
            "fetched_at": item.fetched_at,
            "warc_file": warc.file if warc else None,
            "warc_offset": warc.offset if warc else None,
            "warc_record_id": warc.record_id if warc else None,
            "revisit_of": revisit_of,
            "description": item.description,
            "headings": json.dumps(item.headings, ensure_ascii=False) if item.headings else None,
            "site_name": item.site_name,
            "schema_types": json.dumps(item.schema_types) if item.schema_types else None,
            "decode_error": item.decode_error,
            "extract_error": item.extract_error,
            "request_url": item.request_url,
        }
        followed = set(item.followed)
        cursor = self.conn.execute(
            f"INSERT INTO pages ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
            list(row.values()),
        )
        self.conn.executemany(
            "INSERT INTO links (run_id, page_id, to_url, to_host, internal, how, anchor, "
            "followed) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(self.run_id, cursor.lastrowid, *link, int(link[0] in followed))
             for link in item.links],
        )

    def close_spider(self, spider: Spider | None = None) -> None:
        assert self.conn is not None
        if self.process is not None:  # its rows are committed once it is closed
            self.process.close()
        scope, params = self.scope()
        # the pages of the Scrapy crawl: a resumed crawl may find the browser's there already
        pages = dict(self.conn.execute(
            f"SELECT domain, count(*) FROM pages WHERE {scope} AND id NOT IN "
            "(SELECT page_id FROM page_sources WHERE source = 'browser') GROUP BY domain", params
        ).fetchall())
        rows = []
        for domain, attempts in sorted(self.recorded_attempts().items()):
            best = best_attempt(attempts)
            # in the order the start URLs are tried, not the order their answers came in
            ordered = sorted(attempts, key=lambda a: (a.url.split("/")[2] != a.domain,
                                                      a.url.startswith("https:"), a.url))
            errors = [f"{a.url}: {a.error or a.http_status}" for a in ordered if not alive(a)]
            tls = next((a.tls for a in attempts if a.tls), None) or {}
            rows.append(
                [
                    self.run_id,
                    domain,
                    best.url,
                    best.final_url,
                    best.http_status,
                    best.address,
                    int(alive(best)),
                    best.title,
                    best.lang,
                    pages.get(domain, 0),
                    None if alive(best) else "; ".join(errors)[:2000] or None,
                    best.server,
                    tls.get("issuer"),
                    tls.get("subject"),
                    json.dumps(tls["names"]) if "names" in tls else None,
                    tls.get("not_before"),
                    tls.get("not_after"),
                ]
            )
        with self.conn:
            self.conn.execute(f"DELETE FROM sites WHERE {scope}", params)
            self.conn.executemany(
                "INSERT INTO sites (run_id, domain, url, final_url, http_status, address, alive,"
                " title, lang, pages, error, server, tls_issuer, tls_subject, tls_names,"
                " tls_not_before, tls_not_after) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        self.conn.close()
