"""Scrapy extensions of the census crawl: WARC capture and progress, wired by signals."""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

import sqlite_utils
from scrapy import Request, Spider, signals
from scrapy.exceptions import NotConfigured
from scrapy.http import Response

from ..db import connect, utcnow
from .dedup import find_previous_page
from .items import WARC_META, WarcLocation
from .warc import WarcFiles

log = logging.getLogger(__name__)


CERTIFICATE_TYPE = "application/x-pem-file"
"""The ``metadata`` record of a start URL's TLS certificate, beside its response."""


class WarcCapture:
    """Every exchange of the crawl into the run's WARC files, as the downloader saw it.

    Hooked on ``response_downloaded``, so redirects and robots.txt are captured too, and bodies
    are stored before decompression.  A payload unchanged since an earlier run of the same URL
    becomes a ``revisit`` record that refers to the earlier capture.  The record's location
    goes into ``request.meta[WARC_META]`` as a ``WarcLocation`` for the spider and the pipeline.
    A start URL's server certificate follows its response as a ``metadata`` record (PEM).
    """

    def __init__(
        self, db_path: str, run_id: int, folder: Path, info: dict[str, Any], max_size: int
    ) -> None:
        self.db_path = db_path
        self.run_id = run_id
        stamp = utcnow().replace("-", "").replace(":", "")
        self.files = WarcFiles(folder, f"census-run{run_id:05d}-{stamp}", info, max_size)
        self.db = sqlite_utils.Database(connect(db_path, check_same_thread=False))

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
        sha256 = hashlib.sha256(body).hexdigest()
        date = utcnow()
        previous = find_previous_page(self.db, response.url, sha256)
        target = self.target(request)
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
        location = self.files.write_exchange(
            response.url,
            date=date,
            ip=str(response.ip_address) if response.ip_address else None,
            request_line=f"{request.method} {target} HTTP/1.1",
            request_headers=request_headers,
            status=response.status,
            headers=headers,
            body=body,
            protocol=response.protocol or "HTTP/1.1",
            revisit_of=(previous["url"], previous["fetched_at"]) if previous else None,
            # ``sites`` keeps the start URL's certificate: a resumed crawl reads it back here
            metadata=(CERTIFICATE_TYPE, response.certificate.dumpPEM())
            if request.meta.get("census_start") and response.certificate is not None else None,
        )
        request.meta[WARC_META] = WarcLocation(
            location.file, location.offset, location.record_id, sha256,
            previous["id"] if previous else None,
        )

    @staticmethod
    def target(request: Request) -> str:
        parts = urlsplit(request.url)
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    def spider_closed(self, spider: Spider) -> None:
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
