"""Scrapy extensions of the census crawl: WARC capture and progress, wired by signals."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import logging
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

import sqlite_utils
from scrapy import Request, Spider, signals
from scrapy.exceptions import NotConfigured
from scrapy.http import Response

from ..db import connect, utcnow
from .dedup import find_previous_page
from .items import WARC_META, PendingWarc, WarcLocation
from .warc import WarcFiles

log = logging.getLogger(__name__)


CERTIFICATE_TYPE = "application/x-pem-file"
"""The ``metadata`` record of a start URL's TLS certificate, beside its response."""


@dataclass
class Exchange:
    """What the reactor took from one download for its WARC records: plain data, no Scrapy."""

    url: str
    date: str
    ip: str | None
    request_line: str
    request_headers: list[tuple[str, str]]
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    protocol: str
    certificate: bytes | None
    pending: PendingWarc


class WarcCapture:
    """Every exchange of the crawl into the run's WARC files, as the downloader saw it.

    Hooked on ``response_downloaded``, so redirects and robots.txt are captured too, and bodies
    are stored before decompression.  A payload unchanged since an earlier run of the same URL
    becomes a ``revisit`` record that refers to the earlier capture.  A start URL's server
    certificate follows its response as a ``metadata`` record (PEM).

    The reactor only copies what the records need; a thread of its own looks up the earlier
    capture and writes the records, in the order of the downloads (gzip, digests and SQLite
    run there without the GIL: on the bench they were a fifth of the reactor's time).
    ``request.meta[WARC_META]`` gets a ``PendingWarc`` at once, with the payload's digest,
    which the census pipeline settles into the record's location before writing the row.
    """

    def __init__(
        self, db_path: str, run_id: int, folder: Path, info: dict[str, Any], max_size: int
    ) -> None:
        self.db_path = db_path
        self.run_id = run_id
        stamp = utcnow().replace("-", "").replace(":", "")
        self.files = WarcFiles(folder, f"census-run{run_id:05d}-{stamp}", info, max_size)
        self.db = sqlite_utils.Database(connect(db_path, check_same_thread=False))

    _queue: queue.SimpleQueue[list[Exchange] | None] | None = None
    _thread: threading.Thread | None = None
    _outbox: list[Exchange] | None = None

    def _submit(self, exchange: Exchange) -> None:
        """To the writer thread, with the other downloads of this turn of the event loop:
        one hand-over a turn, not one a download (each woke the thread, which took the GIL)."""
        if self._queue is None:  # started with the first download: spider_opened wrote alone
            self._queue = queue.SimpleQueue()
            self._outbox = []
            self._thread = threading.Thread(target=self._run, name="census-warc", daemon=True)
            self._thread.start()
        assert self._outbox is not None
        if not self._outbox:
            try:
                asyncio.get_running_loop().call_soon(self._hand_over)
            except RuntimeError:  # no event loop (called directly): at once
                self._queue.put([exchange])
                return
        self._outbox.append(exchange)

    def _hand_over(self) -> None:
        assert self._queue is not None
        batch, self._outbox = self._outbox, []
        if batch:
            self._queue.put(batch)

    def _run(self) -> None:
        assert self._queue is not None
        while (batch := self._queue.get()) is not None:
            for exchange in batch:
                location = None
                try:
                    location = self.write(exchange)
                except Exception:  # as a signal handler's error was: logged, row without WARC
                    log.exception("WARC records of %s not written", exchange.url)
                finally:
                    exchange.pending.settle(location)

    def write(self, exchange: Exchange) -> WarcLocation:
        """The response (or revisit) and request records of one download, and a start URL's
        certificate."""
        sha256 = exchange.pending.sha256
        previous = find_previous_page(self.db, exchange.url, sha256)
        location = self.files.write_exchange(
            exchange.url,
            date=exchange.date,
            ip=exchange.ip,
            request_line=exchange.request_line,
            request_headers=exchange.request_headers,
            status=exchange.status,
            headers=exchange.headers,
            body=exchange.body,
            protocol=exchange.protocol,
            revisit_of=(previous["url"], previous["fetched_at"]) if previous else None,
        )
        if exchange.certificate is not None:
            # ``sites`` keeps the start URL's certificate: a resumed crawl reads it back here
            self.files.write_metadata(exchange.url, exchange.date, location.record_id,
                                      CERTIFICATE_TYPE, exchange.certificate)
        return WarcLocation(location.file, location.offset, location.record_id, sha256,
                            previous["id"] if previous else None)

    @classmethod
    def from_crawler(cls, crawler: Any) -> Self:
        s = crawler.settings
        if not s.get("CENSUS_RUN_ID"):
            raise NotConfigured
        info = {
            "run": s.getint("CENSUS_RUN_ID"),
            "options": s.getdict("CENSUS_OPTIONS"),
            "robots": "obeyed" if s.getbool("ROBOTSTXT_OBEY") else "ignored",
            "http-header-user-agent": s.get("USER_AGENT"),
        }
        ext = cls(
            s["CENSUS_DB"],
            s.getint("CENSUS_RUN_ID"),
            Path(s["CENSUS_OUT"]) / "warc",
            info,
            s.getint("CENSUS_WARC_MAX_SIZE"),
        )
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.response_downloaded, signal=signals.response_downloaded)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_opened(self, spider: Spider) -> None:
        """The run's DNS answers for the hosts to crawl, as ``dns:`` records.

        Only the domains of this crawl when it has a list (``CENSUS_DOMAINS``: a sample, or the
        domains links revealed), and streamed: a run of a million domains is a million hosts.
        """
        only = list(getattr(spider, "only", None) or [])
        if only:
            domains = "SELECT DISTINCT value AS domain FROM json_each(?)"
            params: list[Any] = [json.dumps(only), self.run_id]
        else:
            domains = ("SELECT DISTINCT domain FROM sightings WHERE run_id = ? "
                       "AND domain IS NOT NULL")
            params = [self.run_id, self.run_id]
        rows = self.db.conn.execute(
            "SELECT r.name, r.ttl, r.type, r.value, r.source FROM dns_records r "
            f"JOIN ({domains}) d ON r.name = d.domain OR r.name = 'www.' || d.domain "
            "WHERE r.run_id = ? AND r.type IN ('A', 'AAAA', 'CNAME') ORDER BY r.name, r.type",
            params,
        )
        date = utcnow()
        for host, group in itertools.groupby(rows, key=lambda row: row[0]):
            records = list(group)
            lines = [f"{name}.\t{ttl or 0}\tIN\t{rtype}\t{value}"
                     for name, ttl, rtype, value, _ in records]
            server = records[0][4]
            self.files.write_dns(host, date, (server or "").split("#")[0] or None, lines)

    def response_downloaded(self, response: Response, request: Request, spider: Spider) -> None:
        body = response.body
        pending = PendingWarc(hashlib.sha256(body).hexdigest())
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, values in response.headers.items()
            for v in values
        ]
        request_headers = [("Host", request_host(request.url))] + [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, values in request.headers.items()
            for v in values
        ]
        certificate = None
        if request.meta.get("census_start") and response.certificate is not None:
            certificate = response.certificate.dumpPEM()
        self._submit(Exchange(
            response.url,
            utcnow(),
            str(response.ip_address) if response.ip_address else None,
            f"{request.method} {self.target(request)} HTTP/1.1",
            request_headers,
            response.status,
            headers,
            body,
            response.protocol or "HTTP/1.1",
            certificate,
            pending,
        ))
        request.meta[WARC_META] = pending

    @staticmethod
    def target(request: Request) -> str:
        parts = urlsplit(request.url)
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    def spider_closed(self, spider: Spider) -> None:
        if self._queue is not None and self._thread is not None:
            self._hand_over()
            self._queue.put(None)  # what was downloaded is written first
            self._thread.join()
        self.files.close()
        self.db.close()
        log.info("WARC files: %s", ", ".join(self.files.files) or "none")


def request_host(url: str) -> str:
    return urlsplit(url).netloc


class Progress:
    """Reports pages fetched to the ``CENSUS_PROGRESS`` callable, if the run gave one."""

    def __init__(self, crawler: Any, report: Any) -> None:
        self.crawler = crawler
        self.report = report
        self.pages = 0

    @classmethod
    def from_crawler(cls, crawler: Any) -> Self:
        report = crawler.settings.get("CENSUS_PROGRESS")
        if not callable(report):
            raise NotConfigured
        ext = cls(crawler, report)
        crawler.signals.connect(ext.item_scraped, signal=signals.item_scraped)
        return ext

    def item_scraped(self, item: Any, spider: Spider) -> None:
        if type(item).__name__ == "PageItem":
            self.pages += 1
            self.report("crawl", self.pages, None)
