"""The crawl's components one at a time, on responses built in memory: no reactor, no lab.

A whole lab crawl (tests/crawl/test_crawl.py) proves they work together; these say which
component broke when one does, in a fraction of a second.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from scrapy import Request
from scrapy.exceptions import IgnoreRequest
from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler

from crawler.crawl.items import WARC_META, PageItem, SiteAttempt, TrapItem, WarcLocation
from crawler.crawl.middlewares import NetPolicyMiddleware, TrapMiddleware
from crawler.crawl.pipelines import CensusPipeline
from crawler.crawl.spider import CensusSpider
from crawler.db import open_census, see_name, start_run

HOME = """<html lang="ko"><head><title>조선중앙통신</title>
<meta name="description" content="국가 통신사"></head><body>
<h1>오늘의 소식</h1><p>평양에서 새 소식이 전해졌다.</p>
<a href="/news/1.html">첫 기사</a> <a href="http://kcna.kp/news/1.html">again</a>
<a href="http://rodong.rep.kp/">로동신문</a> <a href="javascript:void(0)">nothing</a>
</body></html>"""

WARC = WarcLocation("census-run00001.warc.gz", 1234, "<urn:uuid:1>", "ab" * 32)


def response(url: str, body: str, *, start: bool = False, status: int = 200,
             warc: WarcLocation | None = WARC) -> HtmlResponse:
    meta = {"census_site": "kcna.kp", "census_start": start, "depth": 0}
    if warc:
        meta[WARC_META] = warc
    request = Request(url, meta=meta)
    return HtmlResponse(url, status=status, body=body.encode(), encoding="utf-8",
                        headers={"Content-Type": "text/html; charset=utf-8", "Server": "nginx"},
                        request=request)


@pytest.fixture
def spider(tmp_path: Path) -> CensusSpider:
    return CensusSpider(str(tmp_path / "c.db"), 1, max_pages=10, allow_net=[])


def test_spider_parse_yields_the_page_its_start_and_only_internal_links(
    spider: CensusSpider,
) -> None:
    out = list(spider.parse(response("http://kcna.kp/", HOME, start=True)))

    page = next(o for o in out if isinstance(o, PageItem))
    assert (page.title, page.lang, page.description) == ("조선중앙통신", "ko", "국가 통신사")
    assert "평양에서" in page.text
    assert page.sha256 == WARC.sha256 and page.warc == WARC
    assert ("http://rodong.rep.kp/", "rodong.rep.kp", 0, "href", "로동신문") in page.links
    attempt = page.attempt  # written with the page: a kill keeps both or neither
    assert isinstance(attempt, SiteAttempt)
    assert (attempt.url, attempt.http_status, attempt.server) == ("http://kcna.kp/", 200, "nginx")
    followed = [o.url for o in out if isinstance(o, Request)]
    assert followed == ["http://kcna.kp/news/1.html"]  # once, and not the other site
    assert page.followed == followed  # recorded with the page (links.followed)


def test_spider_follows_nothing_from_an_error_page(spider: CensusSpider) -> None:
    out = list(spider.parse(response("http://kcna.kp/gone", HOME, status=404)))
    assert [type(o) for o in out] == [PageItem]


def test_spider_without_a_warc_capture_hashes_the_body_itself(spider: CensusSpider) -> None:
    import hashlib

    page = next(iter(spider.parse(response("http://kcna.kp/", HOME, warc=None))))
    assert page.sha256 == hashlib.sha256(HOME.encode()).hexdigest()


def test_pipeline_writes_pages_links_and_the_best_start_url(tmp_path: Path,
                                                            spider: CensusSpider) -> None:
    db = open_census(tmp_path / "c.db")
    run_id = start_run(db, "kp", {})
    see_name(db, run_id, "kcna.kp", "kcna.kp", "kp", "seed", "test")
    out = list(spider.parse(response("http://kcna.kp/", HOME, start=True)))
    pipeline = CensusPipeline(str(tmp_path / "c.db"), run_id)
    pipeline.open_spider()
    pipeline.process_item(SiteAttempt("kcna.kp", "https://kcna.kp/", error="refused"))
    for item in out:
        if not isinstance(item, Request):
            pipeline.process_item(item)
    pipeline.close_spider()

    site = next(db["sites"].rows_where("run_id = ?", [run_id]))
    assert (site["url"], site["alive"], site["pages"], site["error"]) == (
        "http://kcna.kp/", 1, 1, None)
    page = next(db["pages"].rows_where("run_id = ?", [run_id]))
    assert (page["warc_file"], page["warc_offset"], page["title"]) == (
        WARC.file, WARC.offset, "조선중앙통신")
    assert db["links"].count_where("page_id = ? AND internal = 0", [page["id"]]) == 1


def test_netpolicy_middleware_refuses_private_literals_only() -> None:
    middleware = NetPolicyMiddleware.from_crawler(get_crawler(settings_dict={}))
    with pytest.raises(IgnoreRequest, match=r"10\.0\.0\.1"):
        middleware.process_request(Request("http://10.0.0.1/admin"))
    assert middleware.process_request(Request("http://kcna.kp/")) is None
    assert middleware.process_request(Request("http://175.45.176.71/")) is None
    # the second time each host is remembered: the same answers
    with pytest.raises(IgnoreRequest, match=r"10\.0\.0\.1"):
        middleware.process_request(Request("http://10.0.0.1/other"))
    with pytest.raises(IgnoreRequest, match=r"::1"):
        middleware.process_request(Request("http://[::1]:8080/"))
    with pytest.raises(IgnoreRequest, match=r"::1"):
        middleware.process_request(Request("http://[::1]/again"))
    assert middleware.process_request(Request("http://kcna.kp/more")) is None
    assert middleware.process_request(Request("http://175.45.176.71/more")) is None


def test_the_census_runs_none_of_scrapy_s_components_it_does_not_use() -> None:
    """Each would cost the reactor every request; the remote control would run code sent to
    it.  What stays: robots.txt per origin, retries, redirects, decompression, depth."""
    from scrapy.settings import Settings
    from scrapy.utils.conf import build_component_list

    settings = Settings()
    settings.setmodule("crawler.crawl.settings", priority="project")
    on = {name.rsplit(".", 1)[1] for key in ("DOWNLOADER_MIDDLEWARES", "SPIDER_MIDDLEWARES",
                                             "EXTENSIONS")
          for name in build_component_list(settings.getwithbase(key))}
    assert not on & {"OffsiteMiddleware", "HttpAuthMiddleware", "HttpProxyMiddleware",
                     "DownloaderStats", "HttpErrorMiddleware", "MetaCopyDetectionMiddleware",
                     "RemoteControl", "TelnetConsole", "RobotsTxtMiddleware"}
    assert on >= {"RobotsPerOrigin", "RetryMiddleware", "SafeRedirectMiddleware",
                  "HttpCompressionMiddleware", "DepthMiddleware", "RefererMiddleware",
                  "StartSpiderMiddleware", "TrapMiddleware", "WarcCapture"}
    assert not settings.getbool("REMOTE_CONTROL_ENABLED")
    assert not settings.getbool("HTTPPROXY_ENABLED")


def test_trap_middleware_records_calendar_chains_and_session_ids_and_counts_them() -> None:
    crawler = get_crawler(settings_dict={})
    crawler.stats.open_spider()
    middleware = TrapMiddleware.from_crawler(crawler)
    meta = {"census_site": "kcna.kp"}
    calendar = [Request("http://kcna.kp/calendar/2016/2017/01", meta=meta),
                Request("http://kcna.kp/a.html?sid=12345", meta=meta)]
    kept = list(middleware.process_spider_output(
        response("http://kcna.kp/", HOME), [Request("http://kcna.kp/a.html", meta=meta),
                                            *calendar]))
    assert [r.url for r in kept if isinstance(r, Request)] == ["http://kcna.kp/a.html"]
    cut = [(t.url, t.rule.split(":")[0], t.found_on) for t in kept if isinstance(t, TrapItem)]
    assert cut == [("http://kcna.kp/calendar/2016/2017/01", "regex", "http://kcna.kp/"),
                   ("http://kcna.kp/a.html?sid=12345", "regex", "http://kcna.kp/")]
    assert any(k.startswith("census/trap/") for k in crawler.stats.get_stats())


def test_trap_middleware_hands_each_request_its_chain_depth() -> None:
    crawler = get_crawler(settings_dict={})
    crawler.stats.open_spider()
    middleware = TrapMiddleware.from_crawler(crawler)
    meta = {"census_site": "x.kp"}
    page = response("http://x.kp/archive/7/", HOME)
    page.meta["census_chain"] = 3
    (deeper, other) = middleware.process_spider_output(
        page, [Request("http://x.kp/archive/8/", meta=dict(meta)),
               Request("http://x.kp/news/1.html", meta=dict(meta))])
    assert isinstance(deeper, TrapItem) and deeper.rule == "endless-chain"
    assert other.meta["census_chain"] == 0


def test_a_page_whose_extraction_fails_keeps_its_row_links_and_error(
    tmp_path: Path, spider: CensusSpider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both pages the fuzzer found now extract; a step that still raises is recorded."""
    from crawler.lab.faults import BAD_BASE, CONTROL_CHARS

    def fails(root: object) -> str:
        raise ValueError("All strings must be XML compatible")

    db = open_census(tmp_path / "c.db")
    run_id = start_run(db, "kp", {})
    see_name(db, run_id, "kcna.kp", "kcna.kp", "kp", "seed", "test")
    pipeline = CensusPipeline(str(tmp_path / "c.db"), run_id)
    pipeline.open_spider()
    for url, body in (("http://kcna.kp/base", BAD_BASE), ("http://kcna.kp/ctl", CONTROL_CHARS)):
        for item in spider.parse(response(url, body.decode())):
            if not isinstance(item, Request):
                pipeline.process_item(item)
    monkeypatch.setattr("crawler.crawl.extract.main_text", fails)
    for item in spider.parse(response("http://kcna.kp/", HOME, start=True)):
        if not isinstance(item, Request):
            pipeline.process_item(item)
    pipeline.close_spider()

    pages = {r["url"]: r for r in db["pages"].rows_where("run_id = ?", [run_id])}
    assert pages["http://kcna.kp/base"]["extract_error"] is None
    assert pages["http://kcna.kp/ctl"]["title"] == "control chars"
    home = pages["http://kcna.kp/"]
    assert home["extract_error"] == "text: ValueError: All strings must be XML compatible"
    assert home["title"] == "조선중앙통신" and home["text"] is None
    assert db["links"].count_where("page_id = ?", [home["id"]]) == 2  # found before the failure
    assert next(db["sites"].rows_where("run_id = ?", [run_id]))["alive"] == 1


def test_redirects_to_no_url_keep_the_response_instead_of_raising() -> None:
    """Scrapy's redirect middlewares raised ValueError on these, and the page was lost."""
    from scrapy.http import Response

    from crawler.crawl.middlewares import SafeMetaRefreshMiddleware, SafeRedirectMiddleware
    from crawler.lab.faults import BAD_BASE

    crawler = get_crawler(settings_dict={})
    redirects = SafeRedirectMiddleware.from_crawler(crawler)
    refresh = SafeMetaRefreshMiddleware.from_crawler(crawler)
    for location in (b"http://[::1", b"http://kcna.kp:99999/", b"//["):
        request = Request("http://kcna.kp/old")
        moved = Response(request.url, status=302, headers={"Location": location},
                         request=request)
        assert redirects.process_response(request, moved) is moved
    request = Request("http://kcna.kp/old")
    assert isinstance(redirects.process_response(request, Response(
        request.url, status=302, headers={"Location": b"/new"}, request=request)), Request)
    page = response("http://kcna.kp/base", BAD_BASE.decode())
    assert refresh.process_response(page.request, page) is page


def test_a_link_scrapy_refuses_is_stored_not_followed(spider: CensusSpider) -> None:
    """w3lib refuses URLs that urlsplit accepts: the spider raised mid-page."""
    body = ('<a href="http://a[::1]@kcna.kp/">bad</a> <a href="http://kcna.kp:99999/">port</a>'
            '<a href="/next.html">next</a>')
    out = list(spider.parse(response("http://kcna.kp/", body)))
    page = next(o for o in out if isinstance(o, PageItem))
    assert [link[0] for link in page.links] == ["http://a[::1]@kcna.kp/", "http://kcna.kp:99999/",
                                                "http://kcna.kp/next.html"]
    assert [o.url for o in out if isinstance(o, Request)] == ["http://kcna.kp/next.html"]


REFUSED_CONNECT = """
import socket, sys, time
from scrapy.utils.test import get_crawler
from twisted.internet import reactor
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.protocol import Factory, Protocol
from crawler.crawl.handlers import PortMapDownloadHandler

PortMapDownloadHandler(get_crawler())
closed = socket.socket()
closed.bind(("127.0.0.1", 0))  # bound, not listening: a connection to it is refused
started = time.monotonic()
attempt = HostnameEndpoint(reactor, "127.0.0.1", closed.getsockname()[1])
attempt.connect(Factory.forProtocol(Protocol)).addBoth(
    lambda result: (print(time.monotonic() - started, result.getErrorMessage()), reactor.stop()))
reactor.run()
"""


def test_a_refused_connection_fails_without_twisted_s_300_ms_wait() -> None:
    """A site without https is refused twice (robots.txt, start URL, each retried): at
    Twisted's default attempt delay each refusal cost 0.3 s and held the downloader."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", REFUSED_CONNECT], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    seconds, message = out.split(" ", 1)
    assert "refused" in message
    assert float(seconds) < 0.25
