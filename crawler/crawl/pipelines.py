"""The census pipeline: pages, links and sites of the crawl into the census database."""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from typing import Any, Self

from scrapy import Spider

from ..db import connect
from .items import PageItem, SiteAttempt

BATCH = 50


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
    def __init__(self, db_path: str, run_id: int, only: list[str] | None = None) -> None:
        self.db_path = db_path
        self.run_id = run_id
        self.only = only or []
        self.attempts: dict[str, list[SiteAttempt]] = defaultdict(list)
        self.pages: dict[str, int] = defaultdict(int)
        self.pending = 0
        self.conn: sqlite3.Connection | None = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> Self:
        s = crawler.settings
        return cls(s["CENSUS_DB"], s.getint("CENSUS_RUN_ID"), s.getlist("CENSUS_DOMAINS"))

    def open_spider(self, spider: Spider | None = None) -> None:
        self.conn = connect(self.db_path)
        # a rerun of the crawl stage replaces what an earlier attempt of it wrote
        scope = "run_id = ?"
        params: list[Any] = [self.run_id]
        if self.only:
            scope += f" AND domain IN ({', '.join('?' * len(self.only))})"
            params += self.only
        with self.conn:
            self.conn.execute(
                f"DELETE FROM links WHERE page_id IN (SELECT id FROM pages WHERE {scope})", params
            )
            self.conn.execute(
                "UPDATE pages SET revisit_of = NULL WHERE revisit_of IN "
                f"(SELECT id FROM pages WHERE {scope})",
                params,
            )
            self.conn.execute(f"DELETE FROM pages WHERE {scope}", params)
            self.conn.execute(f"DELETE FROM sites WHERE {scope}", params)

    def process_item(self, item: Any, spider: Spider | None = None) -> Any:
        if isinstance(item, SiteAttempt):
            self.attempts[item.domain].append(item)
        elif isinstance(item, PageItem):
            self.write_page(item)
        return item

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
        }
        cursor = self.conn.execute(
            f"INSERT INTO pages ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
            list(row.values()),
        )
        self.pages[item.domain] += 1
        self.conn.executemany(
            "INSERT INTO links (run_id, page_id, to_url, to_host, internal, how, anchor) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(self.run_id, cursor.lastrowid, *link) for link in item.links],
        )
        self.pending += 1
        if self.pending >= BATCH:
            self.conn.commit()
            self.pending = 0

    def close_spider(self, spider: Spider | None = None) -> None:
        assert self.conn is not None
        rows = []
        for domain, attempts in sorted(self.attempts.items()):
            best = best_attempt(attempts)
            errors = [f"{a.url}: {a.error or a.http_status}" for a in attempts if not alive(a)]
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
                    self.pages.get(domain, 0),
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
            self.conn.executemany(
                "INSERT INTO sites (run_id, domain, url, final_url, http_status, address, alive,"
                " title, lang, pages, error, server, tls_issuer, tls_subject, tls_names,"
                " tls_not_before, tls_not_after) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        self.conn.close()
