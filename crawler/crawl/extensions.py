"""Scrapy extensions of the census crawl: WARC capture and progress, wired by signals."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

from scrapy import Request, Spider, signals
from scrapy.exceptions import NotConfigured
from scrapy.http import Response

from ..db import utcnow
from .items import WARC_META, WarcLocation
from .warc import dns_answers
from .writer import WriterClient, record_exchange

log = logging.getLogger(__name__)


CERTIFICATE_TYPE = "application/x-pem-file"
"""The ``metadata`` record of a start URL's TLS certificate, beside its response."""


class WarcCapture:
    """Every exchange of the crawl into the run's WARC files, as the downloader saw it.

    Hooked on ``response_downloaded``, so redirects and robots.txt are captured too, and bodies
    are stored before decompression.  A payload unchanged since an earlier run of the same URL
    becomes a ``revisit`` record that refers to the earlier capture.  The record's location
    goes into ``request.meta[WARC_META]`` as a ``WarcLocation`` for the spider and the pipeline.
    A start URL's server certificate precedes its response as a ``metadata`` record (PEM).

    In a crawl the records are written by the writer process (``writer.py``), which owns the
    run's files; the ``WarcLocation`` then carries the token the writer knows the response
    by, and the writer fills in where it wrote it when it writes the item's row.
    """

    writer: WriterClient | None = None

    def __init__(self, db_path: str, run_id: int, writer: WriterClient | None) -> None:
        self.db_path = db_path
        self.run_id = run_id
        self.writer = writer
        """The writer process that writes the records (``writer.py``); None in ``census
        worker``'s ``WorkerWarc``, which writes them itself."""

    @classmethod
    def from_crawler(cls, crawler: Any) -> Self:
        s = crawler.settings
        if not s.get("CENSUS_RUN_ID"):
            raise NotConfigured
        ext = cls(s["CENSUS_DB"], s.getint("CENSUS_RUN_ID"), writer_for(crawler))
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
        if self.writer is not None:
            self.writer.dns(only)
            return
        for host, date, server, lines in dns_answers(self.db.conn, self.run_id, only):
            self.files.write_dns(host, date, server, lines)

    def response_downloaded(self, response: Response, request: Request, spider: Spider) -> None:
        body = response.body
        sha256 = hashlib.sha256(body).hexdigest()
        date = utcnow()
        target = self.target(request)
        ip = str(response.ip_address) if response.ip_address else None
        request_line = f"{request.method} {target} HTTP/1.1"
        # ``sites`` keeps the start URL's certificate: a resumed crawl reads it back here
        metadata = ((CERTIFICATE_TYPE, response.certificate.dumpPEM())
                    if request.meta.get("census_start") and response.certificate is not None
                    else None)
        request_headers = [(b"Host", [request_host(request.url).encode("latin-1")]),
                           *request.headers.items()]
        fields = {  # the headers as they are: decoded where they are written
            "url": response.url, "sha256": sha256, "date": date, "ip": ip,
            "request_line": request_line, "request_headers": request_headers,
            "status": response.status, "headers": list(response.headers.items()),
            "body": body, "protocol": response.protocol or "HTTP/1.1", "metadata": metadata,
        }
        if self.writer is not None:
            token = self.writer.exchange(fields)
            request.meta[WARC_META] = WarcLocation("", -1, "", sha256, token=token)
        else:
            request.meta[WARC_META] = record_exchange(self.files, self.db, fields)

    @staticmethod
    def target(request: Request) -> str:
        parts = urlsplit(request.url)
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    def spider_closed(self, spider: Spider) -> None:
        if self.writer is not None:
            self.writer.close()  # the pipeline closed it first, when there is one
            files = self.writer.files
        else:
            self.files.close()
            self.db.close()
            files = self.files.files
        log.info("WARC files: %s", ", ".join(files) or "none")


def warc_info(s: Any) -> dict[str, Any]:
    """What a run's warcinfo records say of the crawl, from its settings."""
    return {
        "run": s.getint("CENSUS_RUN_ID"),
        "options": s.getdict("CENSUS_OPTIONS"),
        "robots": "obeyed" if s.getbool("ROBOTSTXT_OBEY") else "ignored",
        "http-header-user-agent": s.get("USER_AGENT"),
    }


def writer_for(crawler: Any) -> WriterClient | None:
    """The crawl's writer process (one, shared by ``WarcCapture`` and ``CensusPipeline``),
    started on first use; None without a run (``census worker``'s ``WorkerWarc`` writes its
    records itself, and the coordinator calls the pipeline directly)."""
    s = crawler.settings
    if not s.get("CENSUS_RUN_ID"):
        return None
    client: WriterClient | None = getattr(crawler, "census_writer", None)
    if client is None:
        run_id = s.getint("CENSUS_RUN_ID")
        stamp = utcnow().replace("-", "").replace(":", "")
        client = WriterClient({
            "folder": str(Path(s["CENSUS_OUT"]) / "warc"),
            "prefix": f"census-run{run_id:05d}-{stamp}",
            "info": warc_info(s),
            "max_size": s.getint("CENSUS_WARC_MAX_SIZE"),
            "db_path": s["CENSUS_DB"],
            "run_id": run_id,
            "only": s.getlist("CENSUS_DOMAINS"),
        })
        crawler.census_writer = client

        def stop(why: str) -> None:
            engine = getattr(crawler, "engine", None)
            if engine is not None and engine.spider is not None:
                engine.close_spider(engine.spider, "writer_died")

        client.on_death = stop
    return client


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
