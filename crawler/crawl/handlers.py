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


class PortMapDownloadHandler(HTTP11DownloadHandler):
    def __init__(self, crawler: Any) -> None:
        super().__init__(crawler)
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
