"""What the crawl reads from HTTP besides the page: robots.txt, redirect targets, and the URLs
links resolve to, through everything a URL meets before it is fetched (Scrapy's ``Request``,
the net policy, the trap rules, the census resolver).  None of them may raise out."""

from __future__ import annotations

import functools

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scrapy import Request
from scrapy.exceptions import IgnoreRequest
from scrapy.http import HtmlResponse, Response
from scrapy.robotstxt import ProtegoRobotParser
from scrapy.utils.test import get_crawler

from crawler.crawl.extract.links import _absolute, page_links
from crawler.crawl.extract.text import parse
from crawler.crawl.middlewares import (
    NetPolicyMiddleware,
    SafeMetaRefreshMiddleware,
    SafeRedirectMiddleware,
)
from crawler.crawl.resolver import CensusResolver
from crawler.crawl.spider import CensusSpider
from crawler.crawl.traps import TrapFilter
from crawler.netpolicy import NetPolicy
from tests.fuzz.harness import EXAMPLES, bounded, fuzz_for, mutants, world_files

pytestmark = [pytest.mark.fuzz, pytest.mark.slow]

PIECES = ["a", "kcna.kp", "/", ".", "..", ":", "?", "#", "[", "]", "@", "%", "%zz", "%00", "&",
          "=", ";", "+", " ", "\t", "\n", "\x00", "\\", "é", "조선", "[::1", "[::1]",
          "http://", "https://", "HTTP://", "//", "javascript:", "mailto:", "data:", ":99999",
          ":80", "127.0.0.1", "10.0.0.1", "0x7f.1", "xn--", "-", "_", "~", "!", "$", "'", "(",
          "1", "2016", "calendar/", "?sid=1", "\u3000", "\ufeff", "\u202e"]
# No lone surrogates: text decoded from bytes (all a page or a header is) never holds one.
URL_TEXT = st.lists(st.sampled_from(PIECES), max_size=24).map("".join)
PAGES = ["http://kcna.kp/", "https://www.kcna.kp/ko/a/b.html?x=1", "http://127.45.178.99:81/",
         "http://[::1]/x/"]
SITE = "kcna.kp"


def follow(request: Request, policy: NetPolicyMiddleware, traps: TrapFilter,
           resolver: CensusResolver) -> None:
    """Everything a followed request meets before the downloader, as the crawl runs it."""
    assert request.url.startswith(("http://", "https://"))
    traps.why_trap(request.url, SITE)
    try:
        policy.process_request(request)
    except IgnoreRequest:
        return
    host = request.url.split("/")[2].rsplit("@", 1)[-1]
    resolver.lookup(host.split(":")[0] if not host.startswith("[") else host)


@functools.lru_cache(maxsize=1)
def url_world() -> tuple[CensusSpider, NetPolicyMiddleware, TrapFilter, CensusResolver]:
    policy = NetPolicyMiddleware.from_crawler(get_crawler(settings_dict={}))
    resolver = CensusResolver(None, {"kcna.kp": ["175.45.176.8"], "x": ["10.0.0.1"]},
                              NetPolicy([]))
    return CensusSpider("unused.db", 1, 10**9, []), policy, TrapFilter(), resolver


def test_fuzz_link_resolution(fuzz_seconds: float) -> None:
    """A page of odd links through the spider: every request it yields is one Scrapy made."""

    @EXAMPLES
    @given(base=st.one_of(st.sampled_from(PAGES), URL_TEXT), ref=URL_TEXT, href=URL_TEXT)
    def one(base: str, ref: str, href: str) -> None:
        spider, policy, traps, resolver = url_world()
        spider.seen.clear()
        resolved = bounded(_absolute, base, ref, size=len(base) + len(ref))
        if resolved is not None:
            url, host = resolved
            assert url.startswith(("http://", "https://")) and host
        page = (f'<base href="{base}"><a href="{href}">x</a><img src="{ref}">'
                f'<a href="{ref}">y</a><meta http-equiv="refresh" content="0;url={href}">')
        root = parse(page)
        assert root is not None
        bounded(page_links, root, "http://kcna.kp/", True, size=len(page))
        request = Request("http://kcna.kp/a/", meta={"census_site": SITE, "depth": 0})
        response = HtmlResponse(request.url, body=page.encode(), request=request,
                                headers={"Content-Type": "text/html; charset=utf-8"})
        for out in bounded(lambda r: list(spider.parse(r)), response, size=len(page)):
            if isinstance(out, Request):
                follow(out, policy, traps, resolver)

    fuzz_for(fuzz_seconds, "links: _absolute, page_links, spider.parse", one)


def test_fuzz_redirects(fuzz_seconds: float) -> None:
    crawler = get_crawler(settings_dict={})
    redirects = SafeRedirectMiddleware.from_crawler(crawler)
    refresh = SafeMetaRefreshMiddleware.from_crawler(crawler)
    pages = [p for p in world_files("*.html") if b"refresh" in p.lower()] or world_files(
        "*.html")[:3]

    @EXAMPLES
    @given(location=st.one_of(URL_TEXT.map(str.encode),
                              st.binary(max_size=64)),
           status=st.sampled_from([301, 302, 303, 307, 308, 300, 200]),
           page=mutants([*pages, b'<meta http-equiv="refresh" content="0;url=/x">'],
                        [b'<base href="', b"http://[", b"url=", b"//[", b"\x00", b"%"],
                        max_size=50_000))
    def one(location: bytes, status: int, page: bytes) -> None:
        _, policy, traps, resolver = url_world()
        request = Request("http://kcna.kp/old", meta={"census_site": SITE})
        moved = Response(request.url, status=status, headers={"Location": location},
                         request=request)
        out = bounded(redirects.process_response, request, moved, size=len(location))
        assert isinstance(out, Request | Response)
        if isinstance(out, Request):
            follow(out, policy, traps, resolver)
        html = HtmlResponse(request.url, body=page, request=request,
                            headers={"Content-Type": "text/html"})
        out = bounded(refresh.process_response, request, html, size=len(page))
        assert isinstance(out, Request | Response)
        if isinstance(out, Request):
            follow(out, policy, traps, resolver)

    fuzz_for(fuzz_seconds, "redirects: Location, meta refresh", one)


def test_fuzz_trap_rules(fuzz_seconds: float) -> None:
    traps = TrapFilter()

    @EXAMPLES
    @given(url=st.one_of(URL_TEXT, st.text(st.characters(exclude_categories=["Cs"]),
                                            max_size=3000)),
           site=st.sampled_from([SITE, ""]))
    def one(url: str, site: str) -> None:
        why = bounded(traps.why_trap, url, site, size=len(url))
        assert why is None or isinstance(why, str)

    fuzz_for(fuzz_seconds, "traps.TrapFilter.why_trap()", one)


ROBOTS_TOKENS = [b"User-agent: *\n", b"User-agent: census\n", b"Disallow: /\n", b"Allow: ",
                 b"Disallow: ", b"Crawl-delay: ", b"Crawl-delay: 1e309\n", b"Crawl-delay: -1\n",
                 b"Request-rate: 1/0\n", b"Request-rate: ", b"Sitemap: ", b"Host: ", b"*", b"$",
                 b"%", b"%2", b"%zz", b"\xef\xbb\xbf", b"\xff\xfe", b"\x00", b"\r", b"#", b":",
                 b"Visit-time: 2500-0100\n", b"Visit-time: ", b"/", b"?", b"\n"]


def test_fuzz_robots_txt(fuzz_seconds: float) -> None:
    crawler = get_crawler(settings_dict={})
    seeds = [*world_files("robots.txt"), b"User-agent: *\nDisallow: /internal/\nCrawl-delay: 2\n"]

    @EXAMPLES
    @given(body=mutants(seeds, ROBOTS_TOKENS, max_size=500_000), path=URL_TEXT)
    def one(body: bytes, path: str) -> None:
        parser = bounded(ProtegoRobotParser.from_crawler, crawler, body, size=len(body))
        for url in ("http://kcna.kp/", f"http://kcna.kp/{path}"):
            assert isinstance(bounded(parser.allowed, url, "census", size=len(body)), bool)
        parser.crawl_delay("census")

    fuzz_for(fuzz_seconds, "robots.txt (Protego via Scrapy)", one)
