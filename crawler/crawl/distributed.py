"""A crawl that spans machines: the coordinator's side, and the Redis layout both sides share.

``census crawl --redis redis://HOST/DB`` runs :func:`coordinate` instead of the local crawl:
it publishes the run (settings, the census' addresses and DNS answers, its sites) in Redis and
is the census' one writer: pages, links and site attempts come back through a results list
and go through the same ``CensusPipeline`` as a local crawl's.  ``census worker`` (any number,
any machine; ``crawler/crawl/worker.py`` and ``leases.py``) crawls.

The unit of hand-out is a site, leased by one worker at a time, so per-site politeness holds
across machines as it does inside one Scrapy process.  The site's frontier is a scrapy-redis
queue and its seen-set a Redis set, so a site continues where it was when its worker dies:
every request a worker pops goes atomically (``LMOVE``) into that worker's in-flight list,
and leaves it only in the transaction that hands the request's results to the coordinator.
A worker proves it is alive by a key with a short expiry; when the key is gone the
coordinator puts the worker's in-flight requests back at the head of their sites' frontiers
and its sites back at the head of the queue of sites.

Redis imports only here, in ``leases.py`` and in ``worker.py``: the single-machine crawl needs
no Redis.
"""

from __future__ import annotations

import json
import logging
import pickle
import time
import uuid
from typing import Any

from ..db import reading
from ..errors import RedisUnavailable
from ..probe.options import ProgressCallback
from . import CrawlResult, crawl_result, crawl_settings
from .resolver import census_addresses

log = logging.getLogger(__name__)

CURRENT = "census:current"
"""The key naming the crawl pass workers should join (a token, see :class:`Keys`)."""

ALIVE_MS = 10_000
"""A worker that has not renewed its key for this long is dead: its work is handed on.
Long enough for a stall of the reactor (a big page parsed) not to look like a death."""

NO_WORKER_WARNING = 30.0
"""Seconds without a worker after which the coordinator says so (and then again)."""

KEEP_SECONDS = 3600
"""How long a finished pass' keys stay in Redis (to look into), then Redis drops them."""

WORKER_LOCAL = ("CENSUS_DB", "CENSUS_OUT")
"""Settings each worker sets for itself; the rest of the crawl's settings come from Redis."""


class Keys:
    """The Redis keys of one crawl pass; the token keeps passes and census files apart."""

    def __init__(self, token: str) -> None:
        self.token = token
        p = f"census:{token}:"
        self.config = p + "config"
        self.addresses = p + "addresses"
        self.dns = p + "dns"
        self.sites = p + "sites"
        self.started = p + "started"
        self.done = p + "done"
        self.budget = p + "budget"
        self.dupefilter = p + "dupefilter"
        self.robots = p + "robots"
        self.workers = p + "workers"
        self.results = p + "results"
        self.finished = p + "finished"
        self.requeued = p + "requeued"
        self.handed = p + "handed"
        self._p = p

    def frontier(self, site: str) -> str:
        return f"{self._p}frontier:{site}"

    def seen(self, site: str) -> str:
        return f"{self._p}seen:{site}"

    def requisites(self, site: str) -> str:
        return f"{self._p}requisites:{site}"

    def alive(self, worker: str) -> str:
        return f"{self._p}alive:{worker}"

    def held(self, worker: str) -> str:
        return f"{self._p}held:{worker}"

    def inflight(self, worker: str) -> str:
        return f"{self._p}inflight:{worker}"

    def all(self) -> str:
        return self._p + "*"


def connect_redis(url: str) -> Any:
    """A client for ``redis://HOST[:PORT]/DB``, with scrapy-redis' connection defaults;
    ``RedisUnavailable`` when it does not answer (or the extra is not installed)."""
    try:
        import redis
        from scrapy_redis import defaults
        from scrapy_redis.connection import get_redis
    except ImportError as exc:
        raise RedisUnavailable(
            f"a distributed crawl needs scrapy-redis: pip install 'cctld-census[distributed]'"
            f" ({exc})") from None
    params = {k: v for k, v in defaults.REDIS_PARAMS.items() if k != "encoding"}
    params["socket_connect_timeout"] = 5
    try:
        server = get_redis(url=url, **params)
        server.ping()
    except (redis.RedisError, ValueError) as exc:
        raise RedisUnavailable(f"Redis at {url}: {exc}") from None
    return server


def lmove(server: Any, source: str, destination: str, where: str, to: str) -> bytes | None:
    """``LMOVE`` (Redis 6.2) by name: the redis-py that pywb pins (2.10) has no method for it."""
    return server.execute_command("LMOVE", source, destination, where, to)


def lpop_many(server: Any, key: str, count: int) -> list[bytes]:
    """Up to ``count`` elements from the head of ``key`` in one command (Redis 6.2)."""
    return server.execute_command("LPOP", key, count) or []


def disconnect(server: Any) -> None:
    server.connection_pool.disconnect()


def dns_answers(db_path: str, run_id: int) -> dict[str, tuple[str | None, list[str]]]:
    """Host -> (server, zone-file lines) of the run's answers for the hosts to crawl, for the
    workers' ``dns:`` WARC records (the query of ``WarcCapture.spider_opened``)."""
    with reading(db_path) as conn:
        rows = conn.execute(
            "SELECT r.name, r.ttl, r.type, r.value, r.source FROM dns_records r "
            "JOIN (SELECT DISTINCT domain FROM sightings WHERE run_id = ? AND domain IS NOT NULL)"
            " d ON r.name = d.domain OR r.name = 'www.' || d.domain "
            "WHERE r.run_id = ? AND r.type IN ('A', 'AAAA', 'CNAME') ORDER BY r.name, r.type",
            [run_id, run_id],
        ).fetchall()
    out: dict[str, tuple[str | None, list[str]]] = {}
    for name, ttl, rtype, value, source in rows:
        _, lines = out.setdefault(name, ((source or "").split("#")[0] or None, []))
        lines.append(f"{name}.\t{ttl or 0}\tIN\t{rtype}\t{value}")
    return out


def publish(server: Any, keys: Keys, settings: dict[str, Any], sites: list[str],
            addresses: dict[str, list[str]],
            dns: dict[str, tuple[str | None, list[str]]]) -> None:
    """Everything a worker needs, then the pass itself (``CURRENT``) last."""
    config = {k: v for k, v in settings.items() if k not in WORKER_LOCAL}
    pipe = server.pipeline(transaction=True)
    pipe.set(keys.config, json.dumps(config))
    for host, found in addresses.items():
        pipe.hset(keys.addresses, host, json.dumps(found))
    for host, answers in dns.items():
        pipe.hset(keys.dns, host, json.dumps(answers))
    if sites:
        pipe.rpush(keys.sites, *sites)
    pipe.set(CURRENT, keys.token)
    pipe.execute()


def requeue_dead(server: Any, keys: Keys) -> int:
    """Hand on the work of every worker whose alive key expired; the requests handed on."""
    handed = 0
    for raw_worker in server.smembers(keys.workers):
        worker = raw_worker.decode()
        if server.exists(keys.alive(worker)):
            continue
        inflight = server.lrange(keys.inflight(worker), 0, -1)
        held = [s.decode() for s in server.lrange(keys.held(worker), 0, -1)]
        pipe = server.pipeline(transaction=True)
        for raw in inflight:
            site = pickle.loads(raw)["meta"]["census_site"]
            pipe.rpush(keys.frontier(site), raw)  # the head: popped next
        for site in held:
            pipe.lpush(keys.sites, site)
        pipe.delete(keys.inflight(worker), keys.held(worker))
        pipe.srem(keys.workers, worker)
        pipe.incrby(keys.requeued, len(inflight))
        pipe.incrby(keys.handed, len(held))
        pipe.execute()
        handed += len(inflight)
        log.warning("worker %s stopped answering: %d sites and %d requests in flight handed on",
                    worker, len(held), len(inflight))
    return handed


def coordinate(
    db_path: str,
    run_id: int,
    out_dir: str,
    allow_nets: list[str],
    options: dict[str, Any],
    redis_url: str,
    progress: ProgressCallback | None = None,
    poll: float = 0.2,
) -> CrawlResult:
    """Crawl every site of ``run_id`` with ``census worker`` processes; write what they find.

    Returns when every site is done and every result is in the census.  Workers may join
    and leave (or die) at any time; with none, the pass waits.  It does not resume an
    interrupted crawl (``resume``): the run's crawl rows are replaced.
    """
    from .pipelines import CensusPipeline
    from .spider import run_sites

    if options.get("resume"):
        log.warning("run %d: a distributed crawl does not resume; its crawl starts again",
                    run_id)
    server = connect_redis(redis_url)
    keys = Keys(f"{run_id}-{uuid.uuid4().hex[:12]}")
    only = list(options.get("domains") or [])
    sites = only or run_sites(db_path, run_id)
    settings = crawl_settings(db_path, run_id, out_dir, allow_nets, options)
    settings["CENSUS_OPTIONS"].pop("redis", None)  # the URL may hold a password
    pipeline = CensusPipeline(db_path, run_id, only, resume=False)
    pipeline.open_spider()
    publish(server, keys, settings, sites, census_addresses(db_path, run_id),
            dns_answers(db_path, run_id))
    log.info("crawl pass %s: %d sites queued in Redis", keys.token, len(sites))
    pages = 0
    reason = "finished"
    waiting_since = time.monotonic()
    try:
        while True:
            batch = lpop_many(server, keys.results, 100)
            if batch:
                for raw in batch:
                    for item in pickle.loads(raw):
                        pipeline.process_item(item)
                        if type(item).__name__ == "PageItem":
                            pages += 1
                            if progress:
                                progress("crawl", pages, None)
                continue
            requeue_dead(server, keys)
            if server.scard(keys.workers):
                waiting_since = time.monotonic()
            elif time.monotonic() - waiting_since > NO_WORKER_WARNING:
                log.warning("no census worker is crawling pass %s: start some with "
                            "census worker --redis URL", keys.token)
                waiting_since = time.monotonic()
            # a site is done only after the results of its last request were pushed
            if server.scard(keys.done) >= len(sites) and not server.llen(keys.results):
                break
            time.sleep(poll)
    except KeyboardInterrupt:
        reason = "shutdown"
        raise
    finally:
        server.set(keys.finished, reason)
        stats = {k: int(server.get(k) or 0) for k in (keys.requeued, keys.handed)}
        pipeline.close_spider()
        for key in server.scan_iter(match=keys.all(), count=1000):
            server.expire(key, KEEP_SECONDS)  # workers read ``finished``, then it all goes
        disconnect(server)
    return crawl_result(db_path, run_id, reason, {
        "finish_reason": reason, "distributed/token": keys.token,
        "distributed/requeued_requests": stats[keys.requeued],
        "distributed/handed_sites": stats[keys.handed],
    })
