"""Downloader and spider middlewares of the census crawl, one job each."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any, Self
from urllib.parse import urlsplit

from scrapy import Request, Spider
from scrapy.downloadermiddlewares.redirect import MetaRefreshMiddleware, RedirectMiddleware
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response

from ..netpolicy import NetPolicy
from .traps import TrapFilter

log = logging.getLogger(__name__)


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
        host = (urlsplit(request.url).hostname or "").strip("[]")
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return None
        if not self.policy.allowed(host):
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
    """Drop followed requests that look like crawler traps (rules in ``data/traps.txt``)."""

    def __init__(self, stats: Any) -> None:
        self.filter = TrapFilter()
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler: Any) -> Self:
        return cls(crawler.stats)

    def _keep(self, result: Any) -> bool:
        if not isinstance(result, Request) or not result.meta.get("census_site"):
            return True
        why = self.filter.why_trap(result.url, result.meta["census_site"])
        if why is None:
            return True
        self.stats.inc_value(f"census/trap/{why.split(':')[0]}")
        log.debug("trap (%s): %s", why, result.url)
        return False

    def process_spider_output(
        self, response: Response, result: Iterable[Any], spider: Spider | None = None
    ) -> Iterable[Any]:
        return (r for r in result if self._keep(r))

    async def process_spider_output_async(
        self, response: Response, result: AsyncIterator[Any], spider: Spider | None = None
    ) -> AsyncIterator[Any]:
        async for r in result:
            if self._keep(r):
                yield r
