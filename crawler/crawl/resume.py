"""Resuming an interrupted crawl of a run: what it did is neither fetched again nor gained.

The census' own record says what the interrupted crawl did: start URLs tried
(``site_attempts``), pages and failures with the URL each request began at, the links each
page followed (``links.followed``, each charged to its site's page budget) and requisites.
:func:`recall` reads it back into the spider: the budget as the interrupted crawl had spent
it, every recorded URL as requested, and the frontier: links followed that left no row (in
flight at the kill, or cut by a trap or the depth limit, which cut them again).

The run's WARC files are the record of what was fetched: :class:`WarcReplay` answers a
request of the resumed crawl from the WARC when the interrupted crawl wrote its response there
but was killed before the census recorded it, so it is not fetched again: pages, start URLs
(their certificate is kept beside them), robots.txt, and revisits of an earlier run's capture.
Only a request whose response was not written yet (in flight at the kill, at most
``CONCURRENT_REQUESTS``) is fetched again: it was never completely received.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit, urlunsplit

from scrapy import Request
from scrapy.exceptions import NotConfigured
from scrapy.http import Headers, Response
from scrapy.responsetypes import responsetypes

from ..db import reading
from ..runs import files_root
from .extensions import CERTIFICATE_TYPE
from .extract import MAX_BODY
from .items import WARC_META, WarcLocation
from .requisites import page_requisites
from .scripts import MAX_SCRIPT_BYTES

if TYPE_CHECKING:
    from .spider import CensusSpider

log = logging.getLogger(__name__)

NOT_BROWSER = "id NOT IN (SELECT page_id FROM page_sources WHERE source = 'browser')"
"""Pages of the Scrapy crawl: the browser capture's pages are added after it."""

MAX_SCRIPTS_PER_SITE = 30
"""Same-site scripts fetched per site for the sandbox: menus live in a few shared files."""


@dataclass
class FetchRecord:
    """What an interrupted crawl recorded: start URLs tried, sites done, links to follow."""

    started: set[str] = field(default_factory=set)
    attempted: set[str] = field(default_factory=set)
    answered: set[str] = field(default_factory=set)
    """URLs with a page or failure row, and the URLs their requests began at (redirects)."""
    frontier: list[tuple[str, str, int, bool]] = field(default_factory=list)
    """``(url, site, depth, charge)``: ``charge`` when the budget is not spent on it yet."""
    requisites: list[tuple[list[tuple[str, str]], str, str]] = field(default_factory=list)
    """``(found, domain, page URL)``: requisites of recorded pages, fetched if not yet."""


def recall(spider: CensusSpider) -> FetchRecord:
    """What the interrupted crawl of the spider's run did, into the spider's state."""
    record = FetchRecord()
    with reading(spider.db_path) as conn:
        scope = "run_id = ?"
        params: list[Any] = [spider.run_id]
        if spider.only:
            scope += f" AND domain IN ({', '.join('?' * len(spider.only))})"
            params += spider.only
        for domain, url in conn.execute(
            f"SELECT domain, url FROM site_attempts WHERE {scope}", params
        ):
            record.started.add(url)
            record.attempted.add(domain)
            spider.scheduled[domain] += 1  # each start URL was charged as it was requested
        # the browser capture's pages come after the Scrapy crawl: not part of its record
        for domain, url, began in conn.execute(
            f"SELECT domain, url, request_url FROM pages WHERE {scope} AND {NOT_BROWSER} "
            f"UNION ALL SELECT domain, url, NULL FROM page_failures WHERE {scope} ORDER BY 1",
            params * 2,
        ):
            spider.first_time(url, domain)
            spider.answered.add(url)
            record.answered.update(u for u in (url, began) if u)
        recall_requisites(spider, conn, scope, params)
        needed: dict[int, set[str]] = {}
        for page_id, domain, page_url, warc_file, warc_offset in conn.execute(
            f"SELECT id, domain, url, warc_file, warc_offset FROM pages WHERE {scope} "
            f"AND {NOT_BROWSER} AND http_status < 400 AND warc_file IS NOT NULL "
            "AND EXISTS (SELECT 1 FROM links WHERE page_id = pages.id AND how = 'src') "
            "ORDER BY id", params
        ):
            needed[page_id] = page_needs(spider, warc_file, warc_offset, page_url, domain,
                                         record)
        queued: set[str] = set()
        for page_id, url, domain, depth, how, followed in conn.execute(
            "SELECT p.id, l.to_url, p.domain, p.depth, l.how, l.followed FROM links AS l "
            "JOIN pages AS p ON p.id = l.page_id "
            f"WHERE p.{scope.replace('AND domain', 'AND p.domain')} "
            f"AND p.{NOT_BROWSER} AND l.internal AND p.http_status < 400 "
            "AND (l.to_url LIKE 'http://%' OR l.to_url LIKE 'https://%') "
            "ORDER BY p.id, l.id",
            params,
        ):
            if followed is None:  # a page recorded before links were marked followed
                # a requisite of the page is fetched as one, not as a page (``_parse_page``)
                if how == "src" and (url in needed.get(page_id, ())
                                     or url in spider.requisites_seen.get(domain, ())):
                    continue
                record.frontier.append((url, domain, depth + 1, True))
            elif followed and url not in queued:
                queued.add(url)
                spider.scheduled[domain] += 1
                spider.first_time(url, domain)
                if url not in record.answered:
                    record.frontier.append((url, domain, depth + 1, False))
    return record


def recall_requisites(spider: CensusSpider, conn: Any, scope: str, params: list[Any]) -> None:
    """The requisites the interrupted crawl fetched are not fetched again; its scripts are
    read back from its WARC, so pages parsed now run with them as before."""
    for domain, url, kind, status, warc_file, warc_offset in conn.execute(
        "SELECT domain, url, kind, http_status, warc_file, warc_offset FROM requisites "
        f"WHERE {scope} ORDER BY id", params
    ):
        spider.requisites_seen.setdefault(domain, set()).add(url)
        if kind != "script" or url in spider.script_cache:
            continue
        if spider.script_fetches[domain] < MAX_SCRIPTS_PER_SITE:
            spider.script_fetches[domain] += 1
        if status != 200:
            spider.cache_script(domain, url, None)
            continue
        body = warc_body(spider, warc_file, warc_offset)
        if body is None:  # not readable (cut short by the kill): fetched again
            spider.requisites_seen[domain].discard(url)
            continue
        spider.cache_script(domain, url, body[:MAX_SCRIPT_BYTES].decode("utf-8", "replace"))


def page_needs(spider: CensusSpider, warc_file: str, warc_offset: int, page_url: str,
               domain: str, record: FetchRecord) -> set[str]:
    """The requisites of a recorded page, from its WARC record; those not fetched yet (the
    crawl was interrupted first) are fetched now."""
    body = warc_body(spider, warc_file, warc_offset)
    if body is None:
        return set()
    found = page_requisites(body[:MAX_BODY].decode("utf-8", "replace"), page_url)
    record.requisites.append((found, domain, page_url))
    return {url for url, _ in found}


def warc_body(spider: Any, warc_file: str | None, warc_offset: int | None) -> bytes | None:
    """The payload of the response record at ``warc_offset`` of the run's WARC, or None."""
    out = spider.settings.get("CENSUS_OUT") if hasattr(spider, "settings") else None
    if not (out and warc_file and warc_offset is not None):
        return None
    record = read_record(Path(out) / "warc" / warc_file, warc_offset)
    return record[2] if record else None


def read_record(path: Path, offset: int, raw: bool = False
                ) -> tuple[int, list[tuple[str, str]], bytes, str | None, str] | None:
    """``(status, headers, body, ip, record id)`` of the response record at ``offset``;
    ``raw`` keeps the body as received (``Content-Encoding`` undone by nobody)."""
    try:
        from warcio.archiveiterator import ArchiveIterator

        with open(path, "rb") as fh:
            fh.seek(offset)
            for rec in ArchiveIterator(fh):
                if rec.rec_type != "response" or rec.http_headers is None:
                    return None
                stream = rec.raw_stream if raw else rec.content_stream()
                body = bytes(stream.read())
                return (int(rec.http_headers.get_statuscode()), list(rec.http_headers.headers),
                        body, rec.rec_headers.get_header("WARC-IP-Address"),
                        rec.rec_headers.get_header("WARC-Record-ID"))
    except Exception as exc:  # a record the kill cut short
        log.debug("no WARC record at %s:%s: %s", path, offset, exc)
    return None


@dataclass
class WarcCaptures:
    """What the run's WARCs hold: the complete ``response`` and ``revisit`` records of
    each URL, and the start URLs' certificates (``metadata`` records) by response record."""

    records: dict[str, list[tuple[Path, int, str]]] = field(default_factory=dict)
    """URL -> ``(file, offset, record type)`` of each capture, in the order of the crawl (a
    URL reached twice, as a start URL and through a redirect, was fetched twice)."""
    certificates: dict[str, bytes] = field(default_factory=dict)
    originals: dict[str, tuple[Path, int]] = field(default_factory=dict)
    """URL -> its last ``response`` record (what a revisit in the same run refers to)."""


def warc_captures(folder: Path, run_id: int, browser: bool = False) -> WarcCaptures:
    """The run's WARCs (``browser``: the browser capture's only), read once; a record cut
    short by the kill ends its file's index."""
    from warcio.archiveiterator import ArchiveIterator

    found = WarcCaptures()
    pattern = f"census-run{run_id:05d}-{'*-browser-' if browser else ''}*.warc.gz"
    for path in sorted(folder.glob(pattern)):
        with open(path, "rb") as fh:
            iterator = ArchiveIterator(fh)
            try:
                for rec in iterator:
                    url = rec.rec_headers.get_header("WARC-Target-URI") or ""
                    kind = rec.rec_type
                    # the whole record: a cut one raises here
                    stream = rec.content_stream() if kind == "metadata" else rec.raw_stream
                    content = stream.read()
                    offset = iterator.get_record_offset()  # (it reads what is left)
                    if not url.startswith(("http://", "https://")):
                        continue
                    if kind in ("response", "revisit"):
                        found.records.setdefault(url, []).append((path, offset, kind))
                        if kind == "response":
                            found.originals[url] = (path, offset)
                    elif kind == "metadata" and rec.rec_headers.get_header(
                            "Content-Type") == CERTIFICATE_TYPE:
                        concurrent = rec.rec_headers.get_header("WARC-Concurrent-To") or ""
                        found.certificates[concurrent] = bytes(content)
            except Exception as exc:
                log.debug("WARC %s ends in a cut record: %s", path.name, exc)
    return found


def read_revisit(path: Path, offset: int) -> tuple[int, list[tuple[str, str]], str | None,
                                                     str, str, str] | None:
    """``(status, headers, ip, record id, refers-to URI, refers-to date)`` of a revisit."""
    try:
        from warcio.archiveiterator import ArchiveIterator

        with open(path, "rb") as fh:
            fh.seek(offset)
            for rec in ArchiveIterator(fh):
                h = rec.rec_headers
                if rec.rec_type != "revisit" or rec.http_headers is None:
                    return None
                return (int(rec.http_headers.get_statuscode()), list(rec.http_headers.headers),
                        h.get_header("WARC-IP-Address"), h.get_header("WARC-Record-ID"),
                        h.get_header("WARC-Refers-To-Target-URI"),
                        h.get_header("WARC-Refers-To-Date"))
    except Exception as exc:
        log.debug("no revisit record at %s:%s: %s", path, offset, exc)
    return None


class WarcReplay:
    """A resumed crawl's request answered from the run's WARC, when the interrupted crawl
    wrote the response there but was killed before the census recorded it.

    Pages, start URLs (with the certificate the ``metadata`` record written just before them
    keeps) and robots.txt are read back; a ``revisit``
    record is answered with the payload of the earlier run's record it refers to.
    """

    def __init__(self, db_path: str, run_id: int, folder: Path) -> None:
        self.db_path = db_path
        self.run_id = run_id
        self.folder = folder
        self.captures: WarcCaptures | None = None
        self.replayed = 0

    @classmethod
    def from_crawler(cls, crawler: Any) -> Self:
        s = crawler.settings
        if not (s.getbool("CENSUS_RESUME") and s.get("CENSUS_RUN_ID") and s.get("CENSUS_OUT")):
            raise NotConfigured
        return cls(s["CENSUS_DB"], s.getint("CENSUS_RUN_ID"), Path(s["CENSUS_OUT"]) / "warc")

    def process_request(self, request: Request, spider: Any = None) -> Response | None:
        robots = request.meta.get("dont_obey_robotstxt") and request.url.endswith("/robots.txt")
        if not (request.meta.get("census_site") or robots):
            return None
        if self.captures is None:
            self.captures = warc_captures(self.folder, self.run_id)
            log.info("resume: %d responses in the run's WARC", len(self.captures.records))
        url = request.url
        found = self.captures.records.get(url)
        if not found and request.meta.get("census_site") and not (
                request.meta.get("census_start") or request.meta.get("census_requisite")):
            url, found = self.same_page(url)
        if not found:
            return None
        path, offset, kind = found.pop(0)  # each capture answers one request
        previous = None
        if kind == "revisit":
            revisit = self.revisited(path, offset)
            if revisit is None:
                return None
            status, header_list, body, ip, record_id, previous = revisit
        else:
            read = read_record(path, offset, raw=True)
            if read is None:
                return None
            status, header_list, body, ip, record_id = read
        certificate = None
        if request.meta.get("census_start") and request.url.startswith("https:"):
            pem = self.captures.certificates.get(record_id)
            if pem is None:  # written before its response since 2026-12-05: an older WARC
                return None
            from twisted.internet.ssl import Certificate

            certificate = Certificate.loadPEM(pem)
        headers = Headers()
        for name, value in header_list:
            headers.appendlist(name, value)
        request.meta[WARC_META] = WarcLocation(path.name, offset, record_id,
                                               hashlib.sha256(body).hexdigest(), previous)
        self.replayed += 1
        log.debug("resume: %s answered from %s", request.url, path.name)
        cls = responsetypes.from_args(headers=headers, url=url, body=body)
        return cls(url=url, status=status, headers=headers, body=body,
                   request=request, certificate=certificate,
                   ip_address=ipaddress.ip_address(ip) if ip else None)

    def same_page(self, url: str) -> tuple[str, list[tuple[Path, int, str]]]:
        """The capture of the same page of the site through its other host (``www.`` or
        bare), if the WARC holds one not answered yet, and its URL.

        A site's bare and ``www.`` hosts serve one site, and a page is requested once per
        site (by path and query), through whichever link claimed it first: a race.  When the
        page that claimed a path was lost at the kill, the resumed crawl may claim it through
        the other host; it is the page the WARC holds, answered as what was fetched then.
        """
        assert self.captures is not None
        parts = urlsplit(url)
        host = parts.netloc
        other = host.removeprefix("www.") if host.startswith("www.") else f"www.{host}"
        candidate = urlunsplit(parts._replace(netloc=other))
        found = self.captures.records.get(candidate)
        if found:
            log.debug("resume: %s answered by the capture of %s", url, candidate)
            return candidate, found
        return url, []

    def revisited(self, path: Path, offset: int) -> tuple[
            int, list[tuple[str, str]], bytes, str | None, str, int | None] | None:
        """A revisit record with the payload of the earlier capture it refers to, and that
        capture's ``pages`` row; None when either cannot be read (then it is fetched)."""
        revisit = read_revisit(path, offset)
        if revisit is None:
            return None
        status, header_list, ip, record_id, uri, date = revisit
        with reading(self.db_path) as conn:
            row = conn.execute(
                "SELECT p.id, p.warc_file, p.warc_offset, r.options FROM pages AS p "
                "JOIN runs AS r ON r.id = p.run_id WHERE p.url = ? AND p.fetched_at = ? "
                "AND p.revisit_of IS NULL ORDER BY p.id DESC LIMIT 1", [uri, date]).fetchone()
        assert self.captures is not None
        if row is not None and row[1] is not None:
            page_id, warc_file, warc_offset, options = row
            root = files_root(self.db_path, json.loads(options or "{}"))
            earlier = read_record(root / "warc" / warc_file, warc_offset, raw=True)
        elif uri in self.captures.originals:  # this run's, its row not committed at the kill
            page_id, earlier = None, read_record(*self.captures.originals[uri], raw=True)
        else:
            return None
        if earlier is None:
            return None
        return status, header_list, earlier[2], ip, record_id, page_id
