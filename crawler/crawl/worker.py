"""``census worker``: one crawler of a crawl that spans machines (see ``distributed.py``).

The census spider runs unchanged but for where its state lives: the frontier is a
scrapy-redis queue per site, the seen-set, page budget and requisites a Redis set or hash per
site, and what it yields goes back to the coordinator through Redis instead of into SQLite.
Each worker writes its own WARC files (``census-run00003-<worker>-...warc.gz``).

Hand-out and hand-back, all in Redis (``Keys``):

- a worker leases sites from the queue of sites into its ``held`` list (``LMOVE``) and pops
  only the frontiers of the sites it holds, at most ``CONCURRENT_REQUESTS_PER_DOMAIN``
  requests of a site at a time;
- a popped request sits in the worker's ``inflight`` list until the transaction that pushes
  its results (the items its callback or errback yielded) removes it; the requests a
  callback yields are in the frontier before that;
- a site whose frontier is empty and that has nothing in flight is done;
- the worker renews its ``alive`` key twice a second; when it dies the coordinator hands
  its in-flight requests and sites on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import pickle
import re
import socket
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

from scrapy import Request, Spider, signals
from scrapy.exceptions import DontCloseSpider
from scrapy.http import Response
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.misc import build_from_crawler
from twisted.python.failure import Failure

from ..db import utcnow
from .distributed import ALIVE_MS, CURRENT, Keys, connect_redis
from .extensions import WarcCapture
from .items import SiteAttempt
from .middlewares import RobotsPerOrigin
from .resolver import CensusResolver
from .spider import CensusSpider, same_site
from .warc import WarcFiles

log = logging.getLogger(__name__)

LEASES = "census_leases"
"""``request.meta`` key: the in-flight entries the request answers for (a redirect or retry
carries its original's until it is queued again)."""

BEAT = 0.5
"""Seconds between renewals of the alive key (``ALIVE_MS`` is twenty of them)."""

GIVE_UP = 60.0
"""Seconds without Redis after which a worker stops (its work went to others)."""


def worker_name(name: str | None = None) -> str:
    """A worker id that is safe in a file name: host, process, and a random part."""
    name = name or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:4]}"
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:64]


class Leases:
    """What this worker holds in Redis: its sites, their requests in flight, its liveness."""

    def __init__(self, server: Any, keys: Keys, worker: str, per_site: int,
                 max_sites: int) -> None:
        self.server, self.keys, self.worker = server, keys, worker
        self.per_site, self.max_sites = per_site, max_sites
        self.held: list[str] = []
        self.inflight: Counter[str] = Counter()
        self.empty: set[str] = set()
        """Held sites whose frontier was empty when last popped (only we feed it)."""
        self.turn = 0

    def register(self) -> None:
        pipe = self.server.pipeline(transaction=True)
        pipe.sadd(self.keys.workers, self.worker)
        pipe.set(self.keys.alive(self.worker), 1, px=ALIVE_MS)
        pipe.execute()

    def beat(self) -> bool:
        """Renew the alive key; False once the pass is finished."""
        if not self.server.sismember(self.keys.workers, self.worker):
            # declared dead (a stall longer than ALIVE_MS): what we held was handed on
            log.error("worker %s was taken for dead; dropping %d sites", self.worker,
                      len(self.held))
            self.held.clear()
            self.inflight.clear()
        self.register()
        return not self.server.exists(self.keys.finished)

    def commit(self, meta: dict[str, Any], items: list[Any]) -> None:
        """The results of one request to the coordinator, and the request off our in-flight
        list, in one transaction: a worker killed before it lost no result, after it none."""
        leases = meta.pop(LEASES, None) or []
        pipe = self.server.pipeline(transaction=True)
        if items:
            pipe.rpush(self.keys.results, pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL))
        for raw in leases:
            pipe.lrem(self.keys.inflight(self.worker), 1, raw)
        pipe.execute()
        site = meta.get("census_site", "")
        self.inflight[site] -= len(leases)


class RedisCounter:
    """``spider.scheduled``: the page budget spent per site, in a Redis hash."""

    def __init__(self, server: Any, key: str) -> None:
        self.server, self.key = server, key

    def __getitem__(self, site: str) -> int:
        return int(self.server.hget(self.key, site) or 0)

    def __setitem__(self, site: str, value: int) -> None:
        self.server.hset(self.key, site, value)


class RedisSet:
    def __init__(self, server: Any, key: str) -> None:
        self.server, self.key = server, key

    def __contains__(self, value: object) -> bool:
        return bool(self.server.sismember(self.key, str(value)))

    def __len__(self) -> int:
        return int(self.server.scard(self.key))

    def add(self, value: str) -> None:
        self.server.sadd(self.key, value)

    def discard(self, value: str) -> None:
        self.server.srem(self.key, value)


class RedisSets(dict):  # type: ignore[type-arg]
    """``spider.requisites_seen``: one Redis set per site."""

    def __init__(self, server: Any, keys: Keys) -> None:
        super().__init__()
        self.server, self.keys = server, keys

    def setdefault(self, site: str, default: Any = None) -> RedisSet:  # type: ignore[override]
        return RedisSet(self.server, self.keys.requisites(site))

    def get(self, site: str, default: Any = None) -> RedisSet:  # type: ignore[override]
        return self.setdefault(site)


def _settings_redis(settings: Any) -> tuple[Any, Keys]:
    return connect_redis(settings["CENSUS_REDIS"]), Keys(settings["CENSUS_REDIS_PASS"])


def _addresses(server: Any, keys: Keys) -> dict[str, list[str]]:
    return {k.decode(): json.loads(v) for k, v in server.hgetall(keys.addresses).items()}


class WorkerSpider(CensusSpider):
    """The census spider with its per-site state in Redis; it starts nothing by itself:
    the scheduler asks it for a site's start requests when it leases a fresh site."""

    name = "census-worker"

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        s = crawler.settings
        server, keys = _settings_redis(s)
        spider.keys = keys
        spider.server = server
        spider.leases = Leases(
            server, keys, s["CENSUS_WORKER"], s.getint("CONCURRENT_REQUESTS_PER_DOMAIN"),
            max(1, s.getint("CONCURRENT_REQUESTS") // s.getint("CONCURRENT_REQUESTS_PER_DOMAIN")))
        spider.addresses = _addresses(server, keys)
        spider.resolver = CensusResolver(None, spider.addresses, spider.policy)
        spider.scheduled = RedisCounter(server, keys.budget)  # type: ignore[assignment]
        spider.requisites_seen = RedisSets(server, keys)
        return spider

    async def start(self) -> AsyncIterator[Any]:
        return
        yield  # an async generator that yields nothing

    def site_start(self, domain: str) -> tuple[list[Request], list[Any]]:
        """The start requests of a site, or why it is not crawled (``CensusSpider.start``)."""
        urls = self.start_urls_of(domain, self.addresses)
        if not urls:
            return [], [SiteAttempt(domain, f"http://{domain}/", error="no address in DNS")]
        reasons = [self.resolver.lookup(u.split("/")[2])[1] for u in urls]
        if all(reasons):
            return [], [SiteAttempt(domain, urls[0], error=f"not crawled: {reasons[0]}")]
        requests = []
        for url in urls:
            self.first_time(url, domain)
            requests.append(self.page_request(url, domain, start=True))
        return requests, []

    def first_time(self, url: str, domain: str) -> bool:
        parts = urlsplit(url)
        key = f"{parts.path or '/'}?{parts.query}"
        return bool(self.server.sadd(self.keys.seen(domain), key))

    def forget(self, url: str, domain: str) -> None:
        parts = urlsplit(url)
        self.server.srem(self.keys.seen(domain), f"{parts.path or '/'}?{parts.query}")
        self.server.hincrby(self.keys.budget, domain, -1)

    def failed(self, failure: Failure) -> list[Any]:
        """Errback output skips the spider middlewares: it is committed here."""
        items = list(super().failed(failure))
        self.leases.commit(failure.request.meta, items)  # type: ignore[attr-defined]
        return []

    def requisite_failed(self, failure: Failure) -> list[Any]:
        items = list(super().requisite_failed(failure))
        self.leases.commit(failure.request.meta, items)  # type: ignore[attr-defined]
        return []


class LeaseCommit:
    """Spider middleware nearest the engine: the requests a callback yields go to the
    frontier as they come, its items are held and committed with the request's lease."""

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Any) -> Self:
        return cls(crawler)

    async def process_spider_output(
        self, response: Response, result: AsyncIterator[Any], spider: Spider | None = None
    ) -> AsyncIterator[Any]:
        items: list[Any] = []
        try:
            async for out in result:
                if isinstance(out, Request):
                    yield out
                else:
                    items.append(out)
        finally:
            self.crawler.spider.leases.commit(response.meta, items)


class LeaseScheduler:
    """Scrapy's scheduler interface over the sites this worker leases (see module doc)."""

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.spider: WorkerSpider | None = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> Self:
        return cls(crawler)

    def open(self, spider: Spider) -> None:
        from scrapy_redis.dupefilter import RFPDupeFilter
        from scrapy_redis.queue import FifoQueue

        assert isinstance(spider, WorkerSpider)
        self.spider = spider
        self.leases: Leases = spider.leases
        self.keys = spider.keys
        self.server = spider.server
        self.dupefilter = RFPDupeFilter(self.server, self.keys.dupefilter)
        # a frontier per site: scrapy-redis' FIFO queue (push LPUSH, pop from the right)
        self.queues: dict[str, FifoQueue] = {}
        self.queue_class = FifoQueue
        self.leases.register()

    def close(self, reason: str) -> None:
        return None

    def queue(self, site: str) -> Any:
        if site not in self.queues:
            self.queues[site] = self.queue_class(self.server, self.spider, self.keys.frontier(site))
        return self.queues[site]

    def has_pending_requests(self) -> bool:
        return bool(self.leases.held)

    def enqueue_request(self, request: Request) -> bool:
        site = request.meta.get("census_site", "")
        leases = request.meta.pop(LEASES, None) or []
        if not request.dont_filter and self.dupefilter.request_seen(request):
            self.leases.commit({"census_site": site, LEASES: leases}, [])
            return False
        queue = self.queue(site)
        pipe = self.server.pipeline(transaction=True)
        pipe.lpush(queue.key, queue._encode_request(request))
        for raw in leases:  # a redirect or retry: the original's lease passes to it
            pipe.lrem(self.keys.inflight(self.leases.worker), 1, raw)
        pipe.execute()
        self.leases.inflight[site] -= len(leases)
        self.leases.empty.discard(site)
        return True

    def next_request(self) -> Request | None:
        self.release_done()
        self.take_sites()
        held = self.leases.held
        for i in range(len(held)):
            site = held[(self.leases.turn + i) % len(held)]
            if site in self.leases.empty or self.leases.inflight[site] >= self.leases.per_site:
                continue
            raw = self.server.lmove(self.keys.frontier(site),
                                    self.keys.inflight(self.leases.worker), "RIGHT", "LEFT")
            if raw is None:
                self.leases.empty.add(site)
                continue
            self.leases.turn = (self.leases.turn + i + 1) % max(1, len(held))
            request = self.queue(site)._decode_request(raw)
            request.meta[LEASES] = [raw]
            self.leases.inflight[site] += 1
            return request
        return None

    def release_done(self) -> None:
        for site in list(self.leases.held):
            if site in self.leases.empty and self.leases.inflight[site] <= 0:
                pipe = self.server.pipeline(transaction=True)
                pipe.sadd(self.keys.done, site)
                pipe.lrem(self.keys.held(self.leases.worker), 0, site)
                pipe.execute()
                self.leases.held.remove(site)
                self.leases.empty.discard(site)
                self.leases.inflight.pop(site, None)

    def take_sites(self) -> None:
        assert self.spider is not None
        while len(self.leases.held) < self.leases.max_sites:
            raw = self.server.lmove(self.keys.sites, self.keys.held(self.leases.worker),
                                    "LEFT", "RIGHT")
            if raw is None:
                return
            site = raw.decode()
            self.leases.held.append(site)
            if self.server.hexists(self.keys.started, site):
                continue  # handed on from a dead worker: its frontier is in Redis
            requests, items = self.spider.site_start(site)
            queue = self.queue(site)
            pipe = self.server.pipeline(transaction=True)
            for request in requests:
                pipe.lpush(queue.key, queue._encode_request(request))
            if items:
                pipe.rpush(self.keys.results, pickle.dumps(items))
            pipe.hset(self.keys.started, site, 1)
            pipe.execute()
            if not requests:
                self.leases.empty.add(site)


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
        server.close()
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
        "SCHEDULER": "crawler.crawl.worker.LeaseScheduler",
        "TWISTED_DNS_RESOLVER": "crawler.crawl.worker.RedisResolver",
        "ITEM_PIPELINES": {"crawler.crawl.pipelines.CensusPipeline": None},
        "SPIDER_MIDDLEWARES": {"crawler.crawl.middlewares.TrapMiddleware": 550,
                               "crawler.crawl.worker.LeaseCommit": 10},
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

    from . import LevelFilter, _die_with_parent

    _die_with_parent()
    # as the CLI was told to log (a spawn child inherits no logging setup; ``crawl_run``)
    logging.basicConfig(level=levels.get("", logging.WARNING),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(LevelFilter(levels))
    server = connect_redis(redis_url)
    config = json.loads(server.get(Keys(token).config))
    server.close()
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
        server.close()
