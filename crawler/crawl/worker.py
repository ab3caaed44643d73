"""``census worker``: one crawler of a crawl that spans machines (see ``distributed.py``).

The census spider with its state in Redis (``leases.py``), and the components that replace
the local crawl's: WARC capture into the worker's own files
(``census-run00003-<worker>-...warc.gz``), robots.txt shared through Redis, the census'
addresses from Redis, and a heartbeat that proves the worker alive.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import re
import socket
import time
import uuid
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

from scrapy import Request, Spider, signals
from scrapy.exceptions import DontCloseSpider
from scrapy.http import Response
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.misc import build_from_crawler

from ..db import utcnow
from .distributed import CURRENT, Keys, connect_redis, disconnect
from .extensions import WarcCapture
from .leases import Leases, WorkerSpider, _addresses, _settings_redis
from .middlewares import RobotsPerOrigin
from .resolver import CensusResolver
from .spider import same_site
from .warc import WarcFiles

log = logging.getLogger(__name__)

BEAT = 0.5
"""Seconds between renewals of the alive key (``ALIVE_MS`` is twenty of them)."""

GIVE_UP = 60.0
"""Seconds without Redis after which a worker stops (its work went to others)."""


def worker_name(name: str | None = None) -> str:
    """A worker id that is safe in a file name: host, process, and a random part."""
    name = name or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:4]}"
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:64]


class SiteSlot:
    """Downloader middleware: robots.txt of a site's origins is fetched in the site's download
    slot too, so the site never sees more connections than its per-site limit."""

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Any) -> Self:
        return cls(crawler)

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        if "download_slot" in request.meta:
            return None
        host = (urlsplit(request.url).hostname or "").rstrip(".").lower()
        spider = self.crawler.spider
        for site in getattr(getattr(spider, "leases", None), "held", ()):
            if same_site(host, site):
                request.meta["download_slot"] = site
                break
        return None


class SharedRobots(RobotsPerOrigin):
    """robots.txt read once per origin for the whole pass: each answer (or failure) goes to
    Redis, so a site handed on to another worker is not asked for it again."""

    FAILED = b"\0"

    def __init__(self, crawler: Any) -> None:
        super().__init__(crawler)
        self.server, self.keys = _settings_redis(crawler.settings)

    async def robot_parser(self, request: Request) -> Any:
        url = urlparse_cached(request)
        origin = f"{url.scheme}://{url.netloc}"
        if origin not in self._parsers:
            stored = self.server.hget(self.keys.robots, origin)
            if stored == self.FAILED:
                self._parsers[origin] = None
            elif stored is not None:
                self._parsers[origin] = build_from_crawler(self._parserimpl, self.crawler,
                                                           stored[1:])
        return await super().robot_parser(request)

    async def _parse_robots(self, response: Response, netloc: str, request: Request) -> None:
        self.server.hset(self.keys.robots, netloc, b"+" + response.body)
        await super()._parse_robots(response, netloc, request)

    def _robots_error(self, exc: Exception, netloc: str) -> None:
        self.server.hset(self.keys.robots, netloc, self.FAILED)
        super()._robots_error(exc, netloc)


class RedisResolver(CensusResolver):
    """``TWISTED_DNS_RESOLVER``: the census' addresses, as the coordinator published them."""

    @classmethod
    def from_crawler(cls, crawler: Any, reactor: Any) -> Self:
        from ..netpolicy import NetPolicy

        server, keys = _settings_redis(crawler.settings)
        addresses = _addresses(server, keys)
        disconnect(server)
        return cls(reactor, addresses, NetPolicy(crawler.settings.getlist("CENSUS_ALLOW_NET")))


class _NoHistory:
    """The worker has no census to look up earlier captures in: every payload is new."""

    def execute(self, *args: Any) -> Any:
        return self

    def fetchone(self) -> None:
        return None

    def close(self) -> None:
        return None


class WorkerWarc(WarcCapture):
    """WARC capture into this worker's own files; ``dns:`` records from Redis."""

    def __init__(self, crawler: Any) -> None:
        s = crawler.settings
        self.run_id = s.getint("CENSUS_RUN_ID")
        self.server, self.keys = _settings_redis(s)
        info = {
            "run": self.run_id,
            "worker": s["CENSUS_WORKER"],
            "options": s.getdict("CENSUS_OPTIONS"),
            "robots": "obeyed" if s.getbool("ROBOTSTXT_OBEY") else "ignored",
            "http-header-user-agent": s.get("USER_AGENT"),
        }
        stamp = utcnow().replace("-", "").replace(":", "")
        self.files = WarcFiles(Path(s["CENSUS_OUT"]) / "warc",
                               f"census-run{self.run_id:05d}-{s['CENSUS_WORKER']}-{stamp}",
                               info, s.getint("CENSUS_WARC_MAX_SIZE"))
        self.db = _NoHistory()  # type: ignore[assignment]

    @classmethod
    def from_crawler(cls, crawler: Any) -> Self:
        ext = cls(crawler)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.response_downloaded, signal=signals.response_downloaded)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_opened(self, spider: Spider) -> None:
        date = utcnow()
        for host, value in sorted(self.server.hgetall(self.keys.dns).items()):
            server, lines = json.loads(value)
            self.files.write_dns(host.decode(), date, server, lines)


class Heartbeat:
    """Renews the worker's alive key, wakes the engine for new work in Redis, and keeps the
    spider open until the coordinator says the pass is finished."""

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.running = True
        self.loop: Any = None
        self.missed = 0

    @classmethod
    def from_crawler(cls, crawler: Any) -> Self:
        ext = cls(crawler)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_opened(self, spider: Spider) -> None:
        from twisted.internet import task

        self.loop = task.LoopingCall(self.beat, spider)
        self.loop.start(BEAT, now=True)

    def beat(self, spider: Spider) -> None:
        try:
            self.running = spider.leases.beat()  # type: ignore[attr-defined]
            self.missed = 0
        except Exception as exc:  # Redis away for a moment: the next beat tries again
            self.missed += 1
            log.warning("heartbeat: %s", exc)
            if self.missed * BEAT >= GIVE_UP:  # our work was handed on long ago
                log.error("Redis unreachable for %.0f s: this worker stops", GIVE_UP)
                self.running = False
                spider.leases.held.clear()  # type: ignore[attr-defined]
            return
        slot = getattr(self.crawler.engine, "_slot", None)
        if slot is not None:
            slot.nextcall.schedule()

    def spider_idle(self, spider: Spider) -> None:
        if self.running:
            raise DontCloseSpider

    def spider_closed(self, spider: Spider) -> None:
        if self.loop is not None and self.loop.running:
            self.loop.stop()
        leases: Leases = spider.leases  # type: ignore[attr-defined]
        with contextlib.suppress(Exception):
            leases.server.srem(leases.keys.workers, leases.worker)
            leases.server.delete(leases.keys.alive(leases.worker))


def worker_settings(config: dict[str, Any], redis_url: str, token: str, out_dir: str,
                    worker: str) -> dict[str, Any]:
    """The pass' crawl settings with the worker's components in place of the local ones."""
    settings = dict(config)
    settings.update({
        "CENSUS_DB": "",
        "CENSUS_OUT": out_dir,
        "CENSUS_REDIS": redis_url,
        "CENSUS_REDIS_PASS": token,
        "CENSUS_WORKER": worker,
        "CENSUS_RESUME": False,
        "SCHEDULER": "crawler.crawl.leases.LeaseScheduler",
        "TWISTED_DNS_RESOLVER": "crawler.crawl.worker.RedisResolver",
        "ITEM_PIPELINES": {"crawler.crawl.pipelines.CensusPipeline": None},
        "SPIDER_MIDDLEWARES": {"crawler.crawl.middlewares.TrapMiddleware": 550,
                               "crawler.crawl.leases.LeaseCommit": 10},
        "EXTENSIONS": {"crawler.crawl.extensions.WarcCapture": None,
                       "crawler.crawl.extensions.Progress": None,
                       "crawler.crawl.worker.WorkerWarc": 100,
                       "crawler.crawl.worker.Heartbeat": 200},
    })
    from scrapy.settings import Settings

    base = Settings()
    base.setmodule("crawler.crawl.settings")
    downloader = dict(base.getdict("DOWNLOADER_MIDDLEWARES"))
    downloader["crawler.crawl.worker.SiteSlot"] = 50
    downloader["crawler.crawl.middlewares.RobotsPerOrigin"] = None
    downloader["crawler.crawl.worker.SharedRobots"] = 100
    settings["DOWNLOADER_MIDDLEWARES"] = downloader
    return settings


def _child(redis_url: str, token: str, out_dir: str, worker: str,
           levels: dict[str, int]) -> None:
    from scrapy.crawler import CrawlerProcess
    from scrapy.settings import Settings

    from . import LevelFilter
    from .children import die_with_parent

    die_with_parent("census worker")
    # as the CLI was told to log (a spawn child inherits no logging setup; ``crawl_run``)
    logging.basicConfig(level=levels.get("", logging.WARNING),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(LevelFilter(levels))
    server = connect_redis(redis_url)
    config = json.loads(server.get(Keys(token).config))
    disconnect(server)
    settings = Settings()
    settings.setmodule("crawler.crawl.settings", priority="project")
    settings.update(worker_settings(config, redis_url, token, out_dir, worker),
                    priority="cmdline")
    settings.set("LOG_INSTALL_ROOT_HANDLER", False)
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(WorkerSpider)
    process.crawl(crawler)
    process.start()


def work(redis_url: str, out_dir: str, worker: str | None = None, once: bool = False,
         poll: float = 1.0) -> int:
    """Serve crawl passes from ``redis_url`` (each in a fresh process); the passes served.

    Waits for a coordinator's pass, crawls until it is finished, then waits for the next
    (with ``once``, returns after the first).
    """
    name = worker_name(worker)
    server = connect_redis(redis_url)
    served: set[str] = set()
    context = multiprocessing.get_context("spawn")
    levels = {name: logging.getLogger(name).getEffectiveLevel()
              for name in ("", "crawler", "scrapy", "twisted", "py.warnings", "protego")}
    try:
        while True:
            try:
                token = (server.get(CURRENT) or b"").decode()
                fresh = bool(token) and not server.exists(Keys(token).finished)
            except Exception as exc:  # Redis restarting: wait for it
                log.warning("Redis: %s", exc)
                time.sleep(poll)
                continue
            if not fresh or token in served:
                time.sleep(poll)
                continue
            log.info("worker %s joins crawl pass %s", name, token)
            child = context.Process(target=_child, args=(redis_url, token, out_dir, name, levels),
                                    name="census-worker")
            child.start()
            try:
                child.join()
            except KeyboardInterrupt:
                child.terminate()
                child.join(10)
                raise
            served.add(token)
            if once:
                return len(served)
    finally:
        disconnect(server)
