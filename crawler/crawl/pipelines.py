"""The census pipeline: pages, links and sites of the crawl into the census database."""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Callable
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


class GroupWriter:
    """Writes items in a thread of its own: SQLite does its work (inserts, the search index,
    the commit) without the GIL, beside the reactor.  The items that queued while the last
    transaction ran go in the next one together (a group commit: no waiting for a batch to
    fill), and each item's future is settled only once its transaction is committed.

    The items of one turn of the event loop are handed over together, and the futures of a
    transaction settled together: a hand-over a page woke the thread, which then took the
    GIL from the reactor, once for every page."""

    MAX_GROUP = 200

    def __init__(self, conn: sqlite3.Connection, write: Callable[[Any], None]) -> None:
        self.conn = conn
        self.write = write
        self.queue: queue.SimpleQueue[list[Any] | None] = queue.SimpleQueue()
        self.outbox: list[Any] = []
        self.thread = threading.Thread(target=self._run, name="census-writer", daemon=True)
        self.thread.start()

    def store(self, item: Any) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self.outbox:
            loop.call_soon(self._hand_over)
        self.outbox.append((item, future, loop))
        return future

    def _hand_over(self) -> None:
        batch, self.outbox = self.outbox, []
        if batch:
            self.queue.put(batch)

    def _run(self) -> None:
        done = False
        while not done:
            batch = self.queue.get()
            group = [] if batch is None else batch
            done = batch is None
            while not done and len(group) < self.MAX_GROUP:
                try:
                    batch = self.queue.get_nowait()
                except queue.Empty:
                    break
                if batch is None:  # close(): what came before it is still written
                    done = True
                else:
                    group += batch
            if group:
                self._write_group(group)

    def _write_group(self, group: list[Any]) -> None:
        outcomes: list[BaseException | None]
        try:
            with self.conn:
                for item, _, _ in group:
                    self.write(item)
            outcomes = [None] * len(group)
        except Exception:  # one bad item: the others are written each in its own transaction
            outcomes = []
            for item, _, _ in group:
                try:
                    with self.conn:
                        self.write(item)
                    outcomes.append(None)
                except Exception as exc:
                    outcomes.append(exc)
        settled = [(future, item, exc)
                   for (item, future, _), exc in zip(group, outcomes, strict=True)]
        group[0][2].call_soon_threadsafe(_settle_all, settled)

    def close(self) -> None:
        self._hand_over()
        self.queue.put(None)
        self.thread.join()


def _settle_all(settled: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, item, exc in settled:
        _settle(future, item, exc)


def _settle(future: asyncio.Future[Any], item: Any, exc: BaseException | None) -> None:
    if future.cancelled():
        return
    if exc is None:
        future.set_result(item)
    else:
        future.set_exception(exc)


class CensusPipeline:
    """Writes every item as it comes: an item counts as stored (and Scrapy moves on with
    it) once its transaction is committed, so what was fetched is on disk even if the crawl
    is killed, and a resumed crawl (``CENSUS_RESUME``) reads it back instead of fetching it
    again.  In a crawl the writes run in the writer process (``writer.py``; with
    ``CENSUS_WRITER = "thread"``, in ``GroupWriter``'s thread); called directly, here."""

    def __init__(
        self, db_path: str, run_id: int, only: list[str] | None = None, resume: bool = False
    ) -> None:
        self.db_path = db_path
        self.run_id = run_id
        self.only = only or []
        self.resume = resume
        self.conn: sqlite3.Connection | None = None
        self.writer: GroupWriter | None = None
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

    def start_writer(self) -> None:
        """Write from a thread from now on (in a crawl, once the event loop runs)."""
        assert self.conn is not None
        self.writer = GroupWriter(self.conn, self.write_item)

    def process_item(self, item: Any, spider: Spider | None = None) -> Any:
        assert self.conn is not None
        if self.process is not None:
            return self.process.store(item)
        if self.writer is None and _loop_running():
            self.start_writer()
        if self.writer is not None:
            return self.writer.store(item)
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
        if self.writer is not None:
            self.writer.close()
            self.writer = None
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


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
