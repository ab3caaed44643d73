"""The HTTP download handler with a port map, so the lab can serve a world on other ports.

The lab serves ``http://kcna.kp/`` on, say, port 8080.  This handler connects to
``kcna.kp:8080`` but hands back a response for ``http://kcna.kp/``: the engine, the WARC, the
links and the census see only the URLs of the world being replicated.  With no port set
(``CENSUS_HTTP_PORT`` / ``CENSUS_HTTPS_PORT``) it is Scrapy's own handler.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from scrapy import Request
from scrapy.core.downloader.handlers.http11 import HTTP11DownloadHandler
from scrapy.http import Response
from twisted.internet.endpoints import HostnameEndpoint

CONNECT_ATTEMPT_DELAY = 0.1
"""Seconds between connection attempts to a host's addresses (Twisted's default is 0.3).

Twisted's ``HostnameEndpoint`` notices that the last address was refused only at its next
attempt's tick, so every refused connection cost 0.3 s, even to a host of one address.  A
site without https costs a refused ``robots.txt`` and a refused start URL, each tried twice,
and Scrapy counts a request waiting for its robots.txt against ``CONCURRENT_REQUESTS``: on
the bench, the refused https of 20 sites held the whole downloader for 0.5-0.6 s at the
start.  100 ms is RFC 8305's lowest recommended "Connection Attempt Delay"."""


class PortMapDownloadHandler(HTTP11DownloadHandler):
    def __init__(self, crawler: Any) -> None:
        super().__init__(crawler)
        # the endpoint takes its delay from the class (Scrapy's agent passes none); the
        # crawl process is the census's own, so setting it here touches no one else's
        HostnameEndpoint._DEFAULT_ATTEMPT_DELAY = CONNECT_ATTEMPT_DELAY
        settings = crawler.settings
        self.ports = {
            scheme: settings.getint(name)
            for scheme, name in (("http", "CENSUS_HTTP_PORT"), ("https", "CENSUS_HTTPS_PORT"))
            if settings.get(name)
        }

    async def download_request(self, request: Request) -> Response:
        parts = urlsplit(request.url)
        port = self.ports.get(parts.scheme)
        if port is None or parts.port is not None:
            return await super().download_request(request)
        mapped = request.replace(url=urlunsplit(parts._replace(netloc=f"{parts.hostname}:{port}")))
        response = await super().download_request(mapped)
        return response.replace(url=request.url, request=request)
