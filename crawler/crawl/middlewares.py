"""Downloader and spider middlewares of the census crawl, one job each."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from typing import Any, Self

from scrapy import Request, Spider
from scrapy.downloadermiddlewares.redirect import MetaRefreshMiddleware, RedirectMiddleware
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.http.request import NO_CALLBACK
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred

from ..netpolicy import NetPolicy, ip_literal
from .items import TrapItem
from .traps import TrapFilter

log = logging.getLogger(__name__)

CHAIN_META = "census_chain"
MAX_TRAPS_RECORDED = 1000
"""Trap decisions recorded per site: enough to see what was cut, bounded for endless ones."""


class NetPolicyMiddleware:
    """Refuse requests to literal addresses that are not globally routable.

    Host names are checked by ``CensusResolver``; an IP literal in a link or a redirect
    (``http://10.0.0.1/``) never reaches a resolver, so it is checked here.
    """

    def __init__(self, policy: NetPolicy) -> None:
        self.policy = policy

    @classmethod
    def from_crawler(cls, crawler: Any) -> Self:
        return cls(NetPolicy(crawler.settings.getlist("CENSUS_ALLOW_NET")))

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        host = (urlparse_cached(request).hostname or "").strip("[]")
        if ip_literal(host) is not None and not self.policy.allowed(host):
            raise IgnoreRequest(self.policy.why_not(host))
        return None


class _KeepUnfollowable:
    """A redirect whose target is no URL (``Location: http://[::1``, or a meta refresh under
    such a ``<base href>``) made Scrapy's middleware raise: the response never reached the
    spider and the page lost its row.  Here it goes on as it came, unfollowed."""

    def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Request | Response:
        try:
            return super().process_response(request, response)  # type: ignore[misc]
        except ValueError as exc:
            log.info("redirect of %s not followed: %s", request.url, exc)
            return response


class SafeRedirectMiddleware(_KeepUnfollowable, RedirectMiddleware):
    """Scrapy's 3xx redirects; an invalid ``Location`` keeps the 3xx response."""


class SafeMetaRefreshMiddleware(_KeepUnfollowable, MetaRefreshMiddleware):
    """Scrapy's meta refresh; an invalid target or base keeps the page."""


class TrapMiddleware:
    """Replace followed requests that look like crawler traps (rules in ``data/traps.txt``)
    by a ``TrapItem``, so the census records what was left out and why.

    Each request carries how deep it sits in a chain of its own URL family
    (``request.meta[CHAIN_META]``), which the pages it leads to hand on to their links.
    """

    def __init__(self, crawler: Any) -> None:
        self.filter = TrapFilter()
        self.crawler = crawler
        self.stats = crawler.stats
        self.recorded: Counter[str] = Counter()
        self.seen: set[str] = set()

    @classmethod
    def from_crawler(cls, crawler: Any) -> Self:
        return cls(crawler)

    async def process_start(self, start: AsyncIterator[Any]) -> AsyncIterator[Any]:
        """The frontier of a resumed crawl passes the trap rules again before it is fetched.

        How deep each frontier URL sat in a chain of its family is not recorded, so an
        endless chain that the interruption cut short gets its bound once more.
        """
        async for r in start:
            if isinstance(r, Request) and r.meta.get("census_frontier"):
                why = self.filter.why_trap(r.url)
                if why is not None:
                    self.stats.inc_value(f"census/trap/{why.split(':')[0]}")
                    forget = getattr(self.crawler.spider, "forget", None)
                    if forget is not None:  # cut again: its budget is given back again
                        forget(r.url, r.meta["census_site"])
                    continue
            yield r

    def _judge(self, response: Response, result: Any) -> Any:
        if not isinstance(result, Request) or not result.meta.get("census_site"):
            return result
        verdict = self.filter.judge(result.url, response.url, response.meta.get(CHAIN_META, 0))
        if verdict.why is None:
            result.meta[CHAIN_META] = verdict.chain
            return result
        site = result.meta["census_site"]
        self.stats.inc_value(f"census/trap/{verdict.why.split(':')[0]}")
        log.debug("trap (%s): %s", verdict.why, result.url)
        forget = getattr(self.crawler.spider, "forget", None)
        if forget is not None:  # found again on an index page, it is followed then
            forget(result.url, site)
        if result.url in self.seen or self.recorded[site] >= MAX_TRAPS_RECORDED:
            return None
        self.seen.add(result.url)
        self.recorded[site] += 1
        return TrapItem(site, result.url, verdict.why, response.url)

    def process_spider_output(
        self, response: Response, result: Iterable[Any], spider: Spider | None = None
    ) -> Iterable[Any]:
        return (j for r in result if (j := self._judge(response, r)) is not None)

    async def process_spider_output_async(
        self, response: Response, result: AsyncIterator[Any], spider: Spider | None = None
    ) -> AsyncIterator[Any]:
        async for r in result:
            if (j := self._judge(response, r)) is not None:
                yield j


class RobotsPerOrigin(RobotsTxtMiddleware):
    """robots.txt per scheme, host and port (RFC 9309, 2.3), not per host and port.

    Scrapy keeps one parser per ``netloc``, fetched with the scheme of the first request to
    it: when ``https://`` of a site is refused, its ``http://`` rules were lifted too, and
    which came first depended on the order of requests (a resumed crawl has another order).
    """

    async def robot_parser(self, request: Request) -> Any:
        url = urlparse_cached(request)
        origin = f"{url.scheme}://{url.netloc}"
        if origin not in self._parsers:
            self._parsers[origin] = Deferred()
            robots = Request(f"{origin}/robots.txt", priority=self.DOWNLOAD_PRIORITY,
                             meta={"dont_obey_robotstxt": True}, callback=NO_CALLBACK)
            try:
                response = await self.crawler.engine.download_async(robots)
                await self._parse_robots(response, origin, request)
            except Exception as exc:
                if not isinstance(exc, IgnoreRequest):
                    log.info("robots.txt of %s: %s", origin, exc)
                self._robots_error(exc, origin)
            self._stats.inc_value("robotstxt/request_count")
        parser = self._parsers[origin]
        if isinstance(parser, Deferred):
            return await maybe_deferred_to_future(parser)
        return parser
