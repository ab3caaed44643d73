"""The census spider: one spider for every site of a run.

For each registrable domain of the run that has an address (itself or its ``www.`` host) it
starts at ``http://`` and ``https://`` of both, follows links that stay on the site, up to a
page budget per site; everything it sees becomes items for the census pipeline.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any, Self
from urllib.parse import urlsplit

from scrapy import Request, Spider
from scrapy.http import Response, TextResponse
from twisted.python.failure import Failure

from ..db import reading, run_domains, utcnow
from ..netpolicy import NetPolicy
from .analyse import Analysis, PageJob, analyse
from .extract import MAX_BODY
from .extract.links import MAX_LINKS
from .items import WARC_META, PageFailure, PageItem, RequisiteItem, SiteAttempt, WarcLocation
from .requisites import css_references
from .resolver import CensusResolver, census_addresses
from .resume import MAX_SCRIPTS_PER_SITE, FetchRecord, recall
from .scripts import MAX_SCRIPT_BYTES, needs_engine, script_sources
from .workers import Workers, analysing_writer, planned_workers

log = logging.getLogger(__name__)



def same_site(host: str, domain: str) -> bool:
    return host == domain or host.endswith("." + domain)


def run_sites(db_path: str, run_id: int) -> list[str]:
    """The registrable domains of the run, read on the crawl's own connection."""
    with reading(db_path) as conn:
        return run_domains(conn, run_id)


def server_header(response: Response) -> str | None:
    values = response.headers.getlist(b"Server")
    return b", ".join(values).decode("latin-1") if values else None


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
        self.scripts_on = True
        """Run each page's own scripts to find where they navigate (``CENSUS_SCRIPTS``)."""
        self.script_cache: dict[str, str | None] = {}
        self.site_scripts: dict[str, dict[str, str | None]] = {}
        """The same scripts by site: what a page's sandbox may need."""
        self.workers = Workers(0)
        """Where pages are analysed (``CENSUS_EXTRACT_WORKERS``): this process by default."""
        self.configured_workers: int | None = 0
        """``CENSUS_EXTRACT_WORKERS``; None: by the crawl's size (``planned_workers``)."""
        self.script_fetches: Counter[str] = Counter()
        self.requisites_on = True
        """Fetch each page's same-site images, stylesheets, scripts and fonts."""
        self.max_requisites = 300
        self.requisites_seen: dict[str, set[str]] = {}
        self.only: list[str] = []
        """Crawl only these domains (a second pass for names found in links)."""
        self.resume = False
        """Continue an interrupted crawl of the run: what it recorded is not fetched again."""
        self.answered: set[str] = set()
        """URLs the interrupted crawl recorded a page or failure of (``resume.recall``)."""

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
        spider.scripts_on = s.getbool("CENSUS_SCRIPTS", True)
        spider.requisites_on = s.getbool("CENSUS_REQUISITES", True)
        spider.max_requisites = s.getint("CENSUS_MAX_REQUISITES", 300)
        workers = s.get("CENSUS_EXTRACT_WORKERS")
        spider.configured_workers = None if workers is None else int(workers)
        spider._set_crawler(crawler)
        return spider

    def start_urls_of(self, domain: str, addresses: dict[str, list[str]]) -> list[str]:
        urls = []
        for host in (domain, f"www.{domain}"):
            if addresses.get(host):
                urls += [f"http://{host}/", f"https://{host}/"]
        return urls

    async def start(self) -> AsyncIterator[Any]:
        domains = self.only or run_sites(self.db_path, self.run_id)
        # a short crawl analyses its pages here: not worth a process of its own
        self.workers.count = planned_workers(self.configured_workers, len(domains),
                                             self.max_pages)
        # the writer process, if the crawl has one, is the first worker (``workers.py``)
        writer = getattr(getattr(self, "crawler", None), "census_writer", None)
        self.workers.start(writer if analysing_writer(self.resume) else None)
        addresses = census_addresses(self.db_path, self.run_id)
        resolver = CensusResolver(None, addresses, self.policy)
        done = recall(self) if self.resume else FetchRecord()
        for domain in domains:
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
        for found, domain, page_url in done.requisites:
            for request in self.requisite_requests(found, domain, page_url):
                yield request
        limit = self.settings.getint("DEPTH_LIMIT") if hasattr(self, "settings") else 0
        for url, domain, depth, charge in done.frontier:
            if limit and depth > limit:
                continue  # cut by the depth limit again (its budget was spent then)
            if charge and not (self.scheduled[domain] < self.max_pages
                               and self.first_time(url, domain)):
                continue
            request = self.page_request(url, domain, depth=depth, charge=charge)
            request.meta["census_frontier"] = True
            yield request

    def first_time(self, url: str, domain: str) -> bool:
        parts = urlsplit(url)
        key = f"{parts.path or '/'}?{parts.query}"
        seen = self.seen.setdefault(domain, set())
        if key in seen:
            return False
        seen.add(key)
        return True

    def forget(self, url: str, domain: str) -> None:
        """A request the trap filter cut: it costs no page budget, and the same URL found
        again (on an index page) is followed then."""
        parts = urlsplit(url)
        self.seen.get(domain, set()).discard(f"{parts.path or '/'}?{parts.query}")
        self.scheduled[domain] -= 1

    def page_request(
        self, url: str, domain: str, start: bool = False, depth: int | None = None,
        charge: bool = True,
    ) -> Request:
        """A page of ``domain``, charged to its budget unless a resumed crawl counted it."""
        if charge:
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

    def parse(self, response: Response) -> Iterator[Any] | AsyncIterator[Any]:
        """The page's items and links.  A page whose same-site scripts are not fetched yet
        fetches them first (into the WARC too), so its handlers can call what they define;
        with analysis workers, the page is analysed in one of them meanwhile the reactor
        goes on (``workers.py``)."""
        # where a redirect ended counts as requested too: a link to it is not fetched again
        self.first_time(response.url, response.meta["census_site"])
        missing = self.missing_scripts(response)
        if missing or not self.workers.in_process:
            return self._parse_async(response, missing)
        return self.page_items(response, analyse(self.page_job(response)))

    def missing_scripts(self, response: Response) -> list[str]:
        if not self.scripts_on or not isinstance(response, TextResponse):
            return []
        domain = response.meta["census_site"]
        missing = []
        for url in script_sources(response.body[:MAX_BODY], response.url):
            host = (urlsplit(url).hostname or "").rstrip(".")
            if (url not in self.script_cache and same_site(host, domain)
                    and url.startswith(("http://", "https://"))):
                missing.append(url)
        return missing[: max(0, MAX_SCRIPTS_PER_SITE - self.script_fetches[domain])]

    async def _parse_async(self, response: Response, missing: list[str]) -> AsyncIterator[Any]:
        domain = response.meta["census_site"]
        for url in missing:
            if url in self.script_cache:
                continue
            self.script_fetches[domain] += 1
            self.requisites_seen.setdefault(domain, set()).add(url)
            code, item = await self.fetch_script(url, domain, response.url)
            self.cache_script(domain, url, code)
            yield item
        warc: WarcLocation | None = response.meta.get(WARC_META)
        analysis = await self.workers.analyse(self.page_job(response),
                                              warc.token if warc else None)
        for item in self.page_items(response, analysis):
            yield item

    def cache_script(self, domain: str, url: str, code: str | None) -> None:
        self.script_cache[url] = code
        self.site_scripts.setdefault(domain, {})[url] = code

    def page_job(self, response: Response) -> PageJob:
        """What the analysis of the page needs, as plain data: a worker has no Scrapy."""
        headers = {
            k.decode("latin-1").lower(): b", ".join(v).decode("latin-1")
            for k, v in response.headers.items()
        }
        body = response.body
        scripts = None
        if self.scripts_on and needs_engine(body[:MAX_BODY]):
            # the site's scripts only: the sandbox looks up the page's <script src> in them
            scripts = self.site_scripts.get(response.meta["census_site"], {})
        text_response = isinstance(response, TextResponse)
        return PageJob(response.url, response.status, headers, body, text_response,
                       dict(response.headers) if text_response else {}, scripts)

    async def fetch_script(self, url: str, domain: str,
                           page_url: str) -> tuple[str | None, RequisiteItem]:
        """A same-site script, through the downloader (robots.txt, net policy, WARC), not
        the scheduler: it is part of the page, not a page of its own."""
        request = Request(url, meta={"census_site": domain, "download_slot": domain,
                                     "census_requisite": "script"}, dont_filter=True)
        try:
            response = await self.crawler.engine.download_async(request)
        except Exception as exc:  # refused by robots.txt or the net policy, or unreachable
            log.debug("script %s not fetched: %s", url, exc)
            return None, RequisiteItem(domain, page_url, url, "script", error=str(exc)[:500])
        item = self.requisite_item(response, request.meta, page_url, "script")
        if response.status != 200:
            return None, item
        encoding = getattr(response, "encoding", None) or "utf-8"
        return response.body[:MAX_SCRIPT_BYTES].decode(encoding, "replace"), item

    def requisite_item(self, response: Response, meta: dict[str, Any], page_url: str,
                       kind: str) -> RequisiteItem:
        warc: WarcLocation | None = meta.get(WARC_META)
        content_type = response.headers.get(b"Content-Type", b"").decode("latin-1")
        return RequisiteItem(
            meta["census_site"], page_url, response.url, kind, response.status,
            content_type.split(";")[0].strip().lower() or None, len(response.body),
            warc.sha256 if warc else hashlib.sha256(response.body).hexdigest(), warc)

    def schedule_requisites(self, found: list[tuple[str, str]], domain: str,
                            page_url: str) -> None:
        """Fetch the same-site requisites not fetched yet, within the site's budget; they go
        to the scheduler directly (no depth limit or trap rule: they belong to a page)."""
        engine = getattr(getattr(self, "crawler", None), "engine", None)
        if engine is None:
            return
        for request in self.requisite_requests(found, domain, page_url):
            engine.crawl(request)

    def requisite_requests(self, found: list[tuple[str, str]], domain: str,
                           page_url: str) -> Iterator[Request]:
        if not self.requisites_on:
            return
        seen = self.requisites_seen.setdefault(domain, set())
        for url, kind in found:
            host = (urlsplit(url).hostname or "").rstrip(".")
            if url in seen or not same_site(host, domain) or url in self.script_cache:
                continue
            if len(seen) >= self.max_requisites:
                break
            seen.add(url)
            yield self.requisite_request(url, kind, domain, page_url)

    def requisite_request(self, url: str, kind: str, domain: str, page_url: str) -> Request:
        """A requisite of the page at ``page_url``, its URL counted as seen already."""
        return Request(
            url, callback=self.requisite, errback=self.requisite_failed, dont_filter=True,
            meta={"census_site": domain, "download_slot": domain, "census_requisite": kind,
                  "census_page": page_url})

    def requisite(self, response: Response) -> Iterator[Any]:
        meta = response.meta
        item = self.requisite_item(response, meta, meta["census_page"], meta["census_requisite"])
        yield item
        if item.kind == "stylesheet" and response.status == 200:
            css = response.body[:MAX_SCRIPT_BYTES].decode("utf-8", "replace")
            self.schedule_requisites(css_references(css, response.url), item.domain,
                                     response.url)

    def requisite_failed(self, failure: Failure) -> Iterator[Any]:
        request = failure.request  # type: ignore[attr-defined]
        meta = request.meta
        error = f"{failure.type.__name__}: {failure.getErrorMessage()}"[:500]
        yield RequisiteItem(meta["census_site"], meta["census_page"], request.url,
                            meta["census_requisite"], error=error)

    def page_items(self, response: Response, analysis: Analysis) -> Iterator[Any]:
        """The page's row, its start URL's outcome, its requisites and the links to follow."""
        domain = response.meta["census_site"]
        if self.recorded_before(response.meta, response.url):
            return  # a followed link whose redirect ends at a page recorded before the kill
        content_type, is_html, page = analysis.content_type, analysis.is_html, analysis.page
        address = str(response.ip_address) if response.ip_address else None
        links = [
            (link.url, link.host, int(same_site(link.host, domain)), link.how, link.text)
            for link in page.links
        ]
        if is_html:
            seen = {(url, how) for url, _, _, how, _ in links}
            for url, host, how, text in analysis.script_links:
                if (url, how) not in seen and len(links) < MAX_LINKS:
                    seen.add((url, how))
                    links.append((url, host, int(same_site(host, domain)), how, text))
        requests = list(self.follow(response, analysis, links)) if response.status < 400 else []
        attempt = None
        if response.meta.get("census_start"):
            start_url = response.meta.get("redirect_urls", [response.url])[0]
            attempt = SiteAttempt(
                domain,
                start_url,
                final_url=response.url,
                http_status=response.status,
                address=address,
                title=page.title,
                lang=page.lang,
                server=server_header(response),
                tls=tls_facts(response.certificate) if response.url.startswith("https") else None,
            )
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
            followed=[r.url for r in requests],
            request_url=response.meta.get("redirect_urls", [None])[0],
            # written with the page, in one transaction: a kill keeps both or neither, so a
            # resumed crawl never fetches a start URL whose page it has
            attempt=attempt,
        )
        yield from requests

    def follow(self, response: Response, analysis: Analysis,
               links: list[tuple[str, str, int, str, str]]) -> Iterator[Request]:
        """The page's requisites scheduled, and its links followed as pages within the
        site's budget (each one charged, recorded with the page as ``links.followed``)."""
        domain = response.meta["census_site"]
        needed = {url for url, _ in analysis.requisites}
        self.schedule_requisites(analysis.requisites, domain, response.url)
        for url, _host, internal, how, *_ in links:
            if not internal or not url.startswith(("http://", "https://")):
                continue
            if how == "src" and url in needed:
                continue  # fetched as a requisite of the page, not as a page
            if self.scheduled[domain] >= self.max_pages:
                break
            if self.first_time(url, domain):
                try:
                    request = self.page_request(url, domain)
                except ValueError:  # a URL Scrapy refuses (http://a[::1]/): a link, not a fetch
                    continue
                yield request

    def closed(self, reason: str) -> None:
        self.workers.close()

    def recorded_before(self, meta: dict[str, Any], url: str) -> bool:
        """A resumed crawl's frontier request that ended where the interrupted one had a
        row already (its redirect's target): recorded once, not twice."""
        return self.resume and bool(meta.get("census_frontier")) and url in self.answered

    def failed(self, failure: Failure) -> Iterator[Any]:
        request = failure.request  # type: ignore[attr-defined]
        if self.recorded_before(request.meta, request.url):
            return
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
