"""What the census spider yields: a page it fetched, and the outcome of a site's start URL."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

WARC_META = "census_warc"
"""The ``request.meta`` key under which the WARC capture hands its ``WarcLocation`` on."""


@dataclass(frozen=True)
class WarcLocation:
    """Where the WARC capture wrote a response, for the spider and the census pipeline."""

    file: str
    offset: int
    record_id: str
    sha256: str
    revisit_of: int | None = None
    """The ``pages.id`` whose unchanged payload this response revisits."""


class PendingWarc:
    """A response that the WARC writer thread is still writing (``WarcCapture``): its digest
    is known at once, where the record lands once it is written.  The reactor hands it on
    in place of a ``WarcLocation``; the census pipeline's writer thread waits for it
    (``settled``) before it writes the row, so a row never points at a record not written."""

    __slots__ = ("_done", "_location", "sha256")

    def __init__(self, sha256: str) -> None:
        self.sha256 = sha256
        self._done = threading.Event()
        self._location: WarcLocation | None = None

    def settle(self, location: WarcLocation | None) -> None:
        """Written (or not: None, the write failed and the row gets no WARC columns)."""
        self._location = location
        self._done.set()

    def result(self) -> WarcLocation | None:
        self._done.wait()
        return self._location

    def __reduce__(self) -> tuple[Any, ...]:  # a distributed worker pickles its items
        return _location, (self.result(),)


def _location(location: WarcLocation | None) -> WarcLocation | None:
    return location


def settled(warc: WarcLocation | PendingWarc | None) -> WarcLocation | None:
    """The written location of an item's WARC record, waiting for the writer if need be."""
    return warc.result() if isinstance(warc, PendingWarc) else warc


@dataclass
class PageItem:
    domain: str
    url: str
    http_status: int
    content_type: str | None
    charset: str | None
    sha256: str
    title: str | None
    text: str | None
    lang: str | None
    lang_confidence: float | None
    lang_source: str | None
    depth: int
    fetched_at: str
    address: str | None
    warc: WarcLocation | PendingWarc | None
    links: list[tuple[str, str, int, str, str]] = field(default_factory=list)
    """(to_url, to_host, internal, how, anchor text) of every link on the page."""
    decode_error: str | None = None
    extract_error: str | None = None
    description: str | None = None
    headings: list[str] = field(default_factory=list)
    site_name: str | None = None
    schema_types: list[str] = field(default_factory=list)
    followed: list[str] = field(default_factory=list)
    """Links the crawl requested as pages (charged to the site's budget), for a resume."""
    request_url: str | None = None
    """The URL the request began at, when a redirect ended at ``url``."""
    attempt: SiteAttempt | None = None
    """The start URL this page answered, written with it."""


@dataclass
class SiteAttempt:
    """One start URL of a site (http or https, bare or www.), and what came of it."""

    domain: str
    url: str
    final_url: str | None = None
    http_status: int | None = None
    address: str | None = None
    error: str | None = None
    title: str | None = None
    lang: str | None = None
    server: str | None = None
    tls: dict[str, Any] | None = None


@dataclass
class PageFailure:
    """A page of a site that gave no answer (timeout, reset, refused): not proof it is gone."""

    domain: str
    url: str
    error: str


@dataclass
class TrapItem:
    """A URL the spider did not follow because a trap rule cut it."""

    domain: str
    url: str
    rule: str
    found_on: str | None = None


@dataclass
class RequisiteItem:
    """An image, stylesheet, script or font a captured page needs, fetched into the WARC."""

    domain: str
    page_url: str
    url: str
    kind: str
    http_status: int | None = None
    content_type: str | None = None
    size: int | None = None
    sha256: str | None = None
    warc: WarcLocation | PendingWarc | None = None
    error: str | None = None
