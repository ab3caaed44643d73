"""The census spider: one spider for every site of a run.

For each registrable domain of the run that has an address (itself or its ``www.`` host) it
starts at ``http://`` and ``https://`` of both, follows links that stay on the site, up to a
page budget per site; everything it sees becomes items for the census pipeline.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import urlsplit

import sqlite_utils
from scrapy import Request, Spider
from scrapy.http import Response
from twisted.python.failure import Failure

from ..db import reading, run_domains, utcnow
from ..netpolicy import NetPolicy
from .extract import Extracted, extract, warm_up
from .items import WARC_META, PageFailure, PageItem, SiteAttempt, WarcLocation
from .resolver import CensusResolver, census_addresses

HTML_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "")


def same_site(host: str, domain: str) -> bool:
    return host == domain or host.endswith("." + domain)


def run_sites(db_path: str, run_id: int) -> list[str]:
    """The registrable domains of the run, read on the crawl's own connection."""
    with reading(db_path) as conn:
        return run_domains(sqlite_utils.Database(conn), run_id)


def tls_facts(certificate: Any) -> dict[str, Any] | None:
    """Issuer, subject, names and validity of a Twisted certificate, for ``sites``."""
    if certificate is None:
        return None
    try:
        from cryptography import x509

        cert = certificate.original.to_cryptography()
        try:
            names = cert.extensions.get_extension_for_class(
                x509.SubjectAlternativeName
            ).value.get_values_for_type(x509.DNSName)
        except x509.ExtensionNotFound:
            names = []
        return {
            "issuer": cert.issuer.rfc4514_string(),
            "subject": cert.subject.rfc4514_string(),
            "names": names,
            "not_before": cert.not_valid_before_utc.isoformat(),
            "not_after": cert.not_valid_after_utc.isoformat(),
        }
    except Exception as exc:  # a certificate we cannot read is still a fact
        return {"error": str(exc)}


@dataclass
class FetchRecord:
    """What an interrupted crawl recorded: start URLs tried, sites done, links to follow."""

    started: set[str] = field(default_factory=set)
    attempted: set[str] = field(default_factory=set)
    frontier: list[tuple[str, str, int]] = field(default_factory=list)


class CensusSpider(Spider):
    name = "census"

    def __init__(
        self, db_path: str, run_id: int, max_pages: int, allow_net: list[str], **kw: Any
    ) -> None:
        super().__init__(**kw)
        self.db_path = db_path
        self.run_id = run_id
        self.max_pages = max_pages
        self.policy = NetPolicy(allow_net)
        self.scheduled: Counter[str] = Counter()
        # path?query already requested per site: the bare and www. hosts, http and https,
        # usually serve one site; each page of it is fetched once, from whichever came first.
        self.seen: dict[str, set[str]] = {}
        self.only: list[str] = []
        """Crawl only these domains (a second pass for names found in links)."""
        self.resume = False
        """Continue an interrupted crawl of the run: what it recorded is not fetched again."""
        self.requested: list[tuple[str, str]] = []
        """``(url, site)`` the interrupted crawl requested (pages and failures)."""

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> Self:
        s = crawler.settings
        spider = cls(
            s["CENSUS_DB"],
            s.getint("CENSUS_RUN_ID"),
            s.getint("CENSUS_MAX_PAGES"),
            s.getlist("CENSUS_ALLOW_NET"),
            *args,
            **kwargs,
        )
        spider.only = s.getlist("CENSUS_DOMAINS")
        spider.resume = s.getbool("CENSUS_RESUME")
        spider._set_crawler(crawler)
        return spider

    def start_urls_of(self, domain: str, addresses: dict[str, list[str]]) -> list[str]:
        urls = []
        for host in (domain, f"www.{domain}"):
            if addresses.get(host):
                urls += [f"http://{host}/", f"https://{host}/"]
        return urls

    async def start(self) -> AsyncIterator[Any]:
        warm_up()
        addresses = census_addresses(self.db_path, self.run_id)
        resolver = CensusResolver(None, addresses, self.policy)
        done = self.recorded() if self.resume else FetchRecord()
        for domain in self.only or run_sites(self.db_path, self.run_id):
            urls = self.start_urls_of(domain, addresses)
            recorded = domain in done.attempted
            if not urls:
                if not recorded:
                    yield SiteAttempt(domain, f"http://{domain}/", error="no address in DNS")
                continue
            reasons = [resolver.lookup(u.split("/")[2])[1] for u in urls]
            if all(reasons):
                if not recorded:
                    yield SiteAttempt(domain, urls[0], error=f"not crawled: {reasons[0]}")
                continue
            for url in urls:
                self.first_time(url, domain)
                if url not in done.started:
                    yield self.page_request(url, domain, start=True)
        limit = self.settings.getint("DEPTH_LIMIT") if hasattr(self, "settings") else 0
        for url, domain, depth in done.frontier:
            if limit and depth > limit:
                continue
            if self.scheduled[domain] < self.max_pages and self.first_time(url, domain):
                request = self.page_request(url, domain, depth=depth)
                request.meta["census_frontier"] = True
                yield request

    def recorded(self) -> FetchRecord:
        """What the interrupted crawl of this run already did, from the census' own record.

        Every page, failure and start URL it recorded counts as requested, so none is fetched
        again; the internal links of its pages not requested yet are the frontier, in the
        order they were found.
        """
        record = FetchRecord()
        with reading(self.db_path) as conn:
            scope = "run_id = ?"
            params: list[Any] = [self.run_id]
            if self.only:
                scope += f" AND domain IN ({', '.join('?' * len(self.only))})"
                params += self.only
            for domain, url in conn.execute(
                f"SELECT domain, url FROM site_attempts WHERE {scope}", params
            ):
                record.started.add(url)
                record.attempted.add(domain)
            for domain, url in conn.execute(
                f"SELECT domain, url FROM pages WHERE {scope} UNION ALL "
                f"SELECT domain, url FROM page_failures WHERE {scope} ORDER BY 1", params * 2
            ):
                self.first_time(url, domain)
                self.scheduled[domain] += 1
                self.requested.append((url, domain))
            record.frontier = [
                (url, domain, depth + 1)
                for url, domain, depth in conn.execute(
                    "SELECT l.to_url, p.domain, p.depth FROM links AS l "
                    "JOIN pages AS p ON p.id = l.page_id "
                    f"WHERE p.{scope.replace('AND domain', 'AND p.domain')} "
                    "AND l.internal AND p.http_status < 400 "
                    "AND (l.to_url LIKE 'http://%' OR l.to_url LIKE 'https://%') "
                    "ORDER BY p.id, l.id",
                    params,
                )
            ]
        return record

    def first_time(self, url: str, domain: str) -> bool:
        parts = urlsplit(url)
        key = f"{parts.path or '/'}?{parts.query}"
        seen = self.seen.setdefault(domain, set())
        if key in seen:
            return False
        seen.add(key)
        return True

    def page_request(
        self, url: str, domain: str, start: bool = False, depth: int | None = None
    ) -> Request:
        self.scheduled[domain] += 1
        meta = {"census_site": domain, "census_start": start, "download_slot": domain}
        if depth is not None:
            meta["depth"] = depth
        return Request(
            url,
            callback=self.parse,
            errback=self.failed,
            # one download slot per site: its bare and www. hosts share one connection, in
            # order, so which host a page is fetched from is the same in every run
            meta=meta,
            dont_filter=start,
        )

    def parse(self, response: Response) -> Iterator[Any]:
        domain = response.meta["census_site"]
        # where a redirect ended counts as requested too: a link to it is not fetched again
        self.first_time(response.url, domain)
        headers = {
            k.decode("latin-1").lower(): b", ".join(v).decode("latin-1")
            for k, v in response.headers.items()
        }
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        is_html = content_type in HTML_TYPES or content_type.endswith("+xml")
        page = extract(response.body, response.url, headers) if is_html else Extracted()
        address = str(response.ip_address) if response.ip_address else None
        links = [
            (link.url, link.host, int(same_site(link.host, domain)), link.how, link.text)
            for link in page.links
        ]
        warc: WarcLocation | None = response.meta.get(WARC_META)
        yield PageItem(
            domain=domain,
            url=response.url,
            http_status=response.status,
            content_type=content_type or None,
            charset=page.charset,
            sha256=warc.sha256 if warc else hashlib.sha256(response.body).hexdigest(),
            title=page.title,
            text=page.text,
            lang=page.lang,
            lang_confidence=page.lang_confidence,
            lang_source=page.lang_source,
            depth=response.meta.get("depth", 0),
            fetched_at=utcnow(),
            address=address,
            warc=warc,
            links=links,
            decode_error=page.decode_error,
            extract_error=page.extract_error,
            description=page.description,
            headings=page.headings,
            site_name=page.site_name,
            schema_types=page.schema_types,
        )
        if response.meta.get("census_start"):
            start_url = response.meta.get("redirect_urls", [response.url])[0]
            yield SiteAttempt(
                domain,
                start_url,
                final_url=response.url,
                http_status=response.status,
                address=address,
                title=page.title,
                lang=page.lang,
                server=headers.get("server"),
                tls=tls_facts(response.certificate) if response.url.startswith("https") else None,
            )
        if response.status >= 400:
            return
        for url, _host, internal, *_ in links:
            if not internal or not url.startswith(("http://", "https://")):
                continue
            if self.scheduled[domain] >= self.max_pages:
                break
            if self.first_time(url, domain):
                try:
                    request = self.page_request(url, domain)
                except ValueError:  # a URL Scrapy refuses (http://a[::1]/): a link, not a fetch
                    continue
                yield request

    def failed(self, failure: Failure) -> Iterator[Any]:
        request = failure.request  # type: ignore[attr-defined]
        error = failure.getErrorMessage() or failure.type.__name__
        if not request.meta.get("census_start"):
            if request.meta.get("census_site"):
                yield PageFailure(
                    request.meta["census_site"], request.url,
                    f"{failure.type.__name__}: {error}"[:500],
                )
            return
        yield SiteAttempt(
            request.meta["census_site"],
            request.url,
            error=f"{failure.type.__name__}: {error}"[:500],
        )
