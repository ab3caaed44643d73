"""The leases of ``census worker``: which sites and requests a worker holds in Redis.

The census spider runs unchanged but for where its state lives: the frontier is a
scrapy-redis queue per site, the seen-set, page budget and requisites a Redis set or hash per
site, and what it yields goes back to the coordinator through Redis instead of into SQLite.

Hand-out and hand-back, all in Redis (``Keys``):

- a worker leases sites from the queue of sites into its ``held`` list (``LMOVE``) and pops
  only the frontiers of the sites it holds, at most ``CONCURRENT_REQUESTS_PER_DOMAIN``
  requests of a site at a time;
- a popped request sits in the worker's ``inflight`` list until the transaction that pushes
  its results removes it: the items its callback or errback yielded, and the requests its
  callback yielded into their frontiers;
- what the spider claims for a request it makes (its URL seen, a page of the site's budget,
  a requisite's URL) goes to Redis in the transaction that puts the request in its frontier,
  and is only this worker's (``Claims``) until then: a worker killed in between leaves no
  claim without its request, and the page that made it, fetched again, makes it again;
- a site whose frontier is empty and that has nothing in flight is done;
- the worker renews its ``alive`` key twice a second (``worker.Heartbeat``); when it dies
  the coordinator hands its in-flight requests and sites on.
"""

from __future__ import annotations

import json
import logging
import pickle
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterable
from typing import Any, Self
from urllib.parse import urlsplit

from scrapy import Request, Spider
from scrapy.http import Response
from twisted.python.failure import Failure

from .distributed import ALIVE_MS, Keys, connect_redis, lmove
from .items import SiteAttempt
from .resolver import CensusResolver
from .spider import CensusSpider

log = logging.getLogger(__name__)

LEASES = "census_leases"
"""``request.meta`` key: the in-flight entries the request answers for (a redirect or retry
carries its original's until it is queued again)."""

CLAIM = "census_claim"
"""``request.meta`` key: what the request claims for its site, a :data:`Claim`, until it is
written to Redis with the request."""

Claim = tuple[str | None, bool, str | None]
"""A request's seen key (a page), whether it spent a page of the budget, its URL (a
requisite)."""


def seen_key(url: str) -> str:
    """What a page is seen as on its site (``CensusSpider.first_time``): path and query."""
    parts = urlsplit(url)
    return f"{parts.path or '/'}?{parts.query}"


class Claims:
    """What this worker's spider claimed for requests that are not in a frontier yet, per
    site: the spider decides on these and Redis together (a site is held by one worker at a
    time), and ``LeaseScheduler.write`` moves a request's claim to Redis with the request."""

    def __init__(self) -> None:
        self.seen: defaultdict[str, set[str]] = defaultdict(set)
        self.budget: Counter[str] = Counter()
        self.requisites: defaultdict[str, set[str]] = defaultdict(set)

    def write(self, pipe: Any, keys: Keys, site: str, claim: Claim) -> None:
        key, charged, requisite = claim
        if key is not None:
            pipe.sadd(keys.seen(site), key)
        if charged:
            pipe.hincrby(keys.budget, site, 1)
        if requisite is not None:
            pipe.sadd(keys.requisites(site), requisite)

    def settle(self, site: str, claim: Claim) -> None:
        """The claim is in Redis now."""
        key, charged, requisite = claim
        self.seen[site].discard(key)  # type: ignore[arg-type]
        self.budget[site] -= charged
        self.requisites[site].discard(requisite)  # type: ignore[arg-type]

    def drop(self, site: str) -> None:
        for claimed in (self.seen, self.budget, self.requisites):
            claimed.pop(site, None)

    def clear(self) -> None:
        for claimed in (self.seen, self.budget, self.requisites):
            claimed.clear()


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
        self.claims = Claims()
        self.scheduler: LeaseScheduler | None = None
        """Writes to Redis (set when it opens)."""

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
            self.claims.clear()
        self.register()
        return not self.server.exists(self.keys.finished)

    def commit(self, meta: dict[str, Any], items: list[Any], requests: Iterable[Request] = (),
               claim: Claim | None = None) -> None:
        """The results of one request (its items to the coordinator, the requests its
        callback made into their frontiers, what the response itself ``claim``-s), and the
        request off our in-flight list, in one transaction: a worker killed before it lost
        no result, after it none."""
        assert self.scheduler is not None
        leases = meta.pop(LEASES, None) or []
        site = meta.get("census_site", "")
        self.scheduler.write(requests, leases, items, [(site, claim)] if claim else [])
        self.inflight[site] -= len(leases)


class RedisCounter:
    """``spider.scheduled``: the page budget spent per site, in a Redis hash, and what the
    requests not written yet spent (``Claims.budget``)."""

    def __init__(self, server: Any, key: str, claimed: Counter[str]) -> None:
        self.server, self.key, self.claimed = server, key, claimed

    def __getitem__(self, site: str) -> int:
        return int(self.server.hget(self.key, site) or 0) + self.claimed[site]

    def __setitem__(self, site: str, value: int) -> None:
        self.claimed[site] += value - self[site]


class RedisSet:
    """A Redis set, and what the requests not written yet claimed of it."""

    def __init__(self, server: Any, key: str, claimed: set[str]) -> None:
        self.server, self.key, self.claimed = server, key, claimed

    def __contains__(self, value: object) -> bool:
        return value in self.claimed or bool(self.server.sismember(self.key, str(value)))

    def __len__(self) -> int:
        return int(self.server.scard(self.key)) + len(self.claimed)

    def add(self, value: str) -> None:
        self.claimed.add(value)

    def discard(self, value: str) -> None:
        self.claimed.discard(value)
        self.server.srem(self.key, value)


class RedisSets(dict):  # type: ignore[type-arg]
    """``spider.requisites_seen``: one Redis set per site."""

    def __init__(self, server: Any, keys: Keys, claims: Claims) -> None:
        super().__init__()
        self.server, self.keys, self.claims = server, keys, claims

    def setdefault(self, site: str, default: Any = None) -> RedisSet:  # type: ignore[override]
        return RedisSet(self.server, self.keys.requisites(site), self.claims.requisites[site])

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
        claims = spider.leases.claims
        spider.scheduled = RedisCounter(server, keys.budget, claims.budget)  # type: ignore[assignment]
        spider.requisites_seen = RedisSets(server, keys, claims)
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
        """Claimed here; in Redis with the request (``page_request``) or the response."""
        key = seen_key(url)
        claimed = self.leases.claims.seen[domain]
        if key in claimed or self.server.sismember(self.keys.seen(domain), key):
            return False
        claimed.add(key)
        return True

    def forget(self, url: str, domain: str) -> None:
        """A request cut before it was written: its claim goes with it."""
        self.leases.claims.seen[domain].discard(seen_key(url))
        self.leases.claims.budget[domain] -= 1

    def page_request(self, url: str, domain: str, start: bool = False,
                     depth: int | None = None, charge: bool = True) -> Request:
        request = super().page_request(url, domain, start, depth, charge)
        request.meta[CLAIM] = (seen_key(url), charge, None)
        return request

    def requisite_request(self, url: str, kind: str, domain: str, page_url: str) -> Request:
        request = super().requisite_request(url, kind, domain, page_url)
        request.meta[CLAIM] = (None, False, url)
        return request

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
    """Spider middleware nearest the engine: what a callback yields, its items and the
    requests to their frontiers, is committed with the request's lease once it is all
    there; nothing goes on to the engine.  (Scrapy takes a callback's output off it into a
    queue before it schedules the requests: committed as they came, a page could be stored
    and its links not yet queued when the worker was killed.)"""

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Any) -> Self:
        return cls(crawler)

    async def process_spider_output(
        self, response: Response, result: AsyncIterator[Any], spider: Spider | None = None
    ) -> AsyncIterator[Any]:
        items: list[Any] = []
        requests: list[Request] = []
        try:
            async for out in result:
                (requests if isinstance(out, Request) else items).append(out)
        finally:
            # a page is seen as where it ended too (``CensusSpider.parse``)
            claim = None if "census_requisite" in response.meta else (
                seen_key(response.url), False, None)
            self.crawler.spider.leases.commit(response.meta, items, requests, claim)
        return
        yield  # an async generator that yields nothing


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
        self.leases.scheduler = self
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
        """A redirect or retry (the original's lease passes to it), or a requisite."""
        site = request.meta.get("census_site", "")
        leases = request.meta.pop(LEASES, None) or []
        queued = self.write([request], leases)
        self.leases.inflight[site] -= len(leases)
        return bool(queued)

    def write(self, requests: Iterable[Request], leases: Iterable[bytes] = (),
              items: list[Any] | None = None, claims: Iterable[tuple[str, Claim]] = (),
              started: str | None = None) -> int:
        """In one transaction: ``requests`` into their sites' frontiers with what they claim
        (one Scrapy's fingerprint finds queued before: its claim only), ``items`` to the
        coordinator, ``leases`` off our in-flight list, more ``claims``, a site ``started``.
        Returns how many requests were queued."""
        pipe = self.server.pipeline(transaction=True)
        written = list(claims)
        fingerprints: set[str] = set()
        queued: set[str] = set()
        count = 0
        for request in requests:
            site = request.meta.get("census_site", "")
            claim = request.meta.pop(CLAIM, None)  # not with the request: written once
            if claim is not None:
                written.append((site, claim))
            if not request.dont_filter:
                fingerprint = self.dupefilter.request_fingerprint(request)
                if (fingerprint in fingerprints
                        or self.server.sismember(self.dupefilter.key, fingerprint)):
                    continue
                fingerprints.add(fingerprint)
                pipe.sadd(self.dupefilter.key, fingerprint)
            queue = self.queue(site)
            pipe.lpush(queue.key, queue._encode_request(request))
            queued.add(site)
            count += 1
        for site, claim in written:
            self.leases.claims.write(pipe, self.keys, site, claim)
        if items:
            pipe.rpush(self.keys.results, pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL))
        for raw in leases:
            pipe.lrem(self.keys.inflight(self.leases.worker), 1, raw)
        if started is not None:
            pipe.hset(self.keys.started, started, 1)
        pipe.execute()
        for site, claim in written:
            self.leases.claims.settle(site, claim)
        self.leases.empty -= queued
        return count

    def next_request(self) -> Request | None:
        self.release_done()
        self.take_sites()
        held = self.leases.held
        for i in range(len(held)):
            site = held[(self.leases.turn + i) % len(held)]
            if site in self.leases.empty or self.leases.inflight[site] >= self.leases.per_site:
                continue
            raw = lmove(self.server, self.keys.frontier(site),
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
                self.leases.claims.drop(site)

    def take_sites(self) -> None:
        assert self.spider is not None
        while len(self.leases.held) < self.leases.max_sites:
            raw = lmove(self.server, self.keys.sites, self.keys.held(self.leases.worker),
                        "LEFT", "RIGHT")
            if raw is None:
                return
            site = raw.decode()
            self.leases.held.append(site)
            if self.server.hexists(self.keys.started, site):
                continue  # handed on from a dead worker: its frontier is in Redis
            requests, items = self.spider.site_start(site)
            self.write(requests, items=items, started=site)
            if not requests:
                self.leases.empty.add(site)
