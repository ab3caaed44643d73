"""What the census spider yields: a page it fetched, and the outcome of a site's start URL."""

from __future__ import annotations

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
    token: int | None = None
    """A response handed to the writer process (``writer.py``), whose location only the
    writer knows yet: it fills in the fields above when it writes the item that names it."""


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
    warc: WarcLocation | None
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
    warc: WarcLocation | None = None
    error: str | None = None
