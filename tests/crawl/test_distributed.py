"""A crawl that spans machines: redis-server, a coordinator and three ``census worker``
processes on loopback, one of them killed mid-crawl, against a single-machine crawl of the
same lab world."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner
from scrapy import Request

from crawler.cli import cli
from crawler.crawl import crawl_run
from crawler.crawl.distributed import Keys, connect_redis, requeue_dead
from crawler.lab import Lab, World, free_port, load_world
from crawler.lab.world import _world_root
from tests.crawlhelp import census_from_world, rows

pytest.importorskip("scrapy_redis")

SITES = 200
PAGES = 4
WORDS = ["people", "harvest", "factory", "science", "railway", "river", "youth", "music"]
ROOT = Path(__file__).resolve().parents[2]


def site_name(i: int) -> str:
    return f"dist{i:03d}.com.kp"


def distributed_world(folder: Path, sites: int = SITES) -> World:
    """The kp world plus ``sites`` small sites of ``PAGES`` pages (``bench/bench_crawl.py``'s
    world, smaller): five sites per address on 127.45.178.100-139, each page linking to
    its children and to two other sites; odd sites answer on https too."""
    root = folder / "world"
    shutil.copytree(_world_root("kp"), root)
    rng = random.Random(14)
    with (root / "zones" / "com.kp.zone").open("a") as zone:
        zone.write("\n")
        for i in range(sites):
            zone.write(f"dist{i:03d} 300 IN A 127.45.178.{100 + i % 40}\n")
    for i in range(sites):
        site = root / "sites" / site_name(i)
        site.mkdir()
        https = "true" if i % 2 else "false"  # half the sites answer on https too
        # 20 ms an answer: two requests of a site at once would overlap in the web log
        (site / "site.toml").write_text(
            f'purpose = "news_media"\nhttps = {https}\ndelay = 0.02\n')
        for n in range(PAGES):
            children = [c for c in (2 * n + 1, 2 * n + 2) if c < PAGES]
            links = "".join(f'<a href="/p{c}.html">page {c}</a> ' for c in children)
            others = "".join(f'<a href="http://{site_name((i + k) % sites)}/">site</a> '
                             for k in (1, 2))
            text = " ".join(rng.choice(WORDS) for _ in range(40))
            (site / ("index.html" if n == 0 else f"p{n}.html")).write_text(
                f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Site {i} '
                f"page {n}</title></head><body><p>{text}</p>{links}{others}</body></html>\n")
    return load_world(str(root))


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A real redis-server on a free loopback port, its files in a temp dir."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder = tmp_path / "redis"
    folder.mkdir()
    proc = subprocess.Popen(
        [server, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(folder),
         "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def census(*args: str, cwd: Path, log: str, module: str = "crawler",
           env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """``census ARGS`` (``python -m module ARGS``) as its own process group (so SIGKILL
    takes its crawl child too), its output in ``cwd/log``."""
    env = {**os.environ, **(env or {}),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                       os.environ.get("PYTHONPATH")]))}
    with (cwd / log).open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", module, *args], cwd=cwd, env=env,
                                start_new_session=True, stdout=out, stderr=subprocess.STDOUT)


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """Most requests in progress at once."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    now = peak = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return peak


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_three_workers_one_killed_capture_what_one_machine_captures(
    tmp_path: Path, redis_url: str
) -> None:
    import redis

    world = distributed_world(tmp_path)
    ports = {name: free_port(world.addresses()) for name in ("dns", "http", "https")}
    domains = [site_name(i) for i in range(SITES)]
    db = tmp_path / "census.db"
    options = {"delay": 0, "download_timeout": 10, "max_pages": 20, "browser": "never",
               "wacz": False, "http_port": ports["http"], "https_port": ports["https"]}
    with Lab(world, ports["dns"], ports["http"], ports["https"]) as lab:
        # one machine
        single = census_from_world(db, world, domains)
        clock = time.monotonic()
        crawl_run(str(db), single, str(tmp_path / "single"), ["127.0.0.0/8"], options)
        single_seconds = time.monotonic() - clock
        single_log = Counter(lab.web.requests)
        lab.web.requests.clear()
        lab.web.timed.clear()

        # three workers and a coordinator
        run = census_from_world(db, world, domains)
        out = tmp_path / "workers"
        clock = time.monotonic()
        procs: list[subprocess.Popen[bytes]] = []
        try:
            workers = [census("worker", "--redis", redis_url, "--out", str(out), "--id", f"w{n}",
                              "--once", cwd=tmp_path, log=f"w{n}.log") for n in range(3)]
            procs += workers
            coordinator = census(
                "crawl", "--db", str(db), "--run", str(run), "--redis", redis_url,
                "--allow-net", "127.0.0.0/8", "--delay", "0", "--download-timeout", "10",
                "--max-pages", "20", "--browser", "never", "--no-wacz",
                "--http-port", str(ports["http"]), "--https-port", str(ports["https"]),
                "--out", str(out), cwd=tmp_path, log="coordinator.log")
            procs.append(coordinator)
            client = redis.StrictRedis.from_url(redis_url)
            token = None
            started = time.monotonic()
            while time.monotonic() - started < 60:  # kill w0 once a fifth of the sites are done
                token = (client.get("census:current") or b"").decode()
                if token and client.scard(f"census:{token}:done") >= SITES // 5:
                    break
                time.sleep(0.05)
            held = client.llen(f"census:{token}:held:w0")
            os.killpg(workers[0].pid, signal.SIGKILL)
            coordinator.wait(90)
            dist_seconds = time.monotonic() - clock
            assert coordinator.returncode == 0, (tmp_path / "coordinator.log").read_text()
            for worker in workers[1:]:
                worker.wait(30)
            requeued = int(client.get(f"census:{token}:requeued") or 0)
            handed = int(client.get(f"census:{token}:handed") or 0)
            dist_log = Counter(lab.web.requests)
            timed = list(lab.web.timed)
        finally:  # a failed run leaves no process behind
            for proc in procs:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()

    print(f"single crawl {single_seconds:.1f} s, {sum(single_log.values())} requests; "
          f"three workers {dist_seconds:.1f} s, {sum(dist_log.values())} requests; killed "
          f"worker held {held} sites, {requeued} requests in flight handed on")
    # exactly what the single-machine crawl captured: pages (a site's path comes from
    # whichever of its start URLs reached it first, here as there), start URLs, sites
    def pages(run_id: int) -> Counter[tuple]:
        return Counter((domain, urlsplit(url).path, status, sha256) for domain, url, status, sha256
                       in rows(db, "SELECT domain, url, http_status, sha256 FROM pages "
                                   "WHERE run_id = ?", run_id))

    def attempts(run_id: int) -> Counter[tuple]:
        return Counter(rows(db, "SELECT domain, url, http_status, error IS NULL "
                                "FROM site_attempts WHERE run_id = ?", run_id))

    assert sum(pages(single).values()) >= SITES * PAGES
    assert pages(run) == pages(single)
    assert attempts(run) == attempts(single)
    assert set(rows(db, "SELECT domain, alive, pages FROM sites WHERE run_id = ?", run)) == set(
        rows(db, "SELECT domain, alive, pages FROM sites WHERE run_id = ?", single))

    # the killed worker held sites; they were handed on
    assert held > 0 and handed == held
    # nothing fetched twice but the killed worker's in-flight requests
    def by_path(log: Counter[tuple[str, str, str]]) -> Counter[tuple[str, str]]:
        """Requests per (host, path), whichever scheme: a site's path is fetched from
        whichever of its start URLs reached it first."""
        out: Counter[tuple[str, str]] = Counter()
        for (_, host, path), n in log.items():
            out[host.split(":")[0], path] += n
        return out

    single_paths, dist_paths = by_path(single_log), by_path(dist_log)
    extra = Counter(key[1].endswith("/robots.txt") for key, n in dist_paths.items()
                    for _ in range(max(0, n - single_paths[key])))
    # a request in flight is fetched again, and so is robots.txt if it was being read for it
    assert extra[False] <= requeued and extra[True] <= requeued, (extra, requeued)
    assert not set(dist_paths) - set(single_paths)

    # per-site concurrency never above its limit (1) across the three workers
    by_site: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for start, end, _, host, _ in timed:
        by_site[host.split(":")[0]].append((start, end))
    crowded = {site for site, v in by_site.items() if max_overlap(v) > 1}
    assert not crowded, sorted(t for t in timed if t[3].split(":")[0] in crowded)

    # each worker wrote its own WARC files
    warcs = {p.name.split("-")[2] for p in (out / "warc").glob("census-run*.warc.gz")}
    assert warcs == {"w0", "w1", "w2"}
    files = {f for (f,) in rows(db, "SELECT DISTINCT warc_file FROM pages WHERE run_id = ?",
                                run)}
    assert all((out / "warc" / f).exists() for f in files)


@pytest.mark.slow
@pytest.mark.timeout(150)
@pytest.mark.parametrize("hold", ["claimed", "committed"])
def test_worker_killed_between_a_page_and_its_links_loses_no_link(
    tmp_path: Path, redis_url: str, hold: str
) -> None:
    """A worker killed after it decided to follow a page's links (``claimed``), or after the
    page's results were stored (``committed``), loses none of them: the page is fetched
    again and finds them again, or they were stored with it."""
    sites = 6
    world = distributed_world(tmp_path, sites)
    ports = {name: free_port(world.addresses()) for name in ("dns", "http", "https")}
    domains = [site_name(i) for i in range(sites)]
    db = tmp_path / "census.db"
    held = tmp_path / "held"
    out = tmp_path / "workers"
    procs: list[subprocess.Popen[bytes]] = []
    with Lab(world, ports["dns"], ports["http"], ports["https"]):
        run = census_from_world(db, world, domains)
        try:
            w0 = census(hold, "worker", "--redis", redis_url, "--out", str(out), "--id", "w0",
                        "--once", cwd=tmp_path, log="w0.log", module="tests.crawl.workerdriver",
                        env={"CENSUS_TEST_HELD": str(held)})
            procs.append(w0)
            coordinator = census(
                "crawl", "--db", str(db), "--run", str(run), "--redis", redis_url,
                "--allow-net", "127.0.0.0/8", "--delay", "0", "--browser", "never",
                "--no-wacz", "--http-port", str(ports["http"]),
                "--https-port", str(ports["https"]), "--out", str(out), cwd=tmp_path,
                log="coordinator.log")
            procs.append(coordinator)
            deadline = time.monotonic() + 60
            while not held.exists() and time.monotonic() < deadline:
                assert w0.poll() is None, (tmp_path / "w0.log").read_text()
                time.sleep(0.05)
            assert held.exists(), (tmp_path / "w0.log").read_text()
            os.killpg(w0.pid, signal.SIGKILL)
            w1 = census("worker", "--redis", redis_url, "--out", str(out), "--id", "w1",
                        "--once", cwd=tmp_path, log="w1.log")
            procs.append(w1)
            coordinator.wait(90)
            assert coordinator.returncode == 0, (tmp_path / "coordinator.log").read_text()
            client = connect_redis(redis_url)
            token = client.get("census:current").decode()
            handed, requeued = (int(client.get(f"census:{token}:{key}") or 0)
                                for key in ("handed", "requeued"))
        finally:
            for proc in procs:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
    # w0's sites were handed on, and with ``claimed`` the page it was reading
    assert handed >= 1 and (requeued >= 1 or hold == "committed")
    # every page once, and the home page of the odd sites twice: over http and https
    expected = Counter((site_name(i), path) for i in range(sites) for path in
                       ["/"] * (1 + i % 2) + [f"/p{n}.html" for n in range(1, PAGES)])
    assert Counter((domain, urlsplit(url).path) for domain, url in rows(
        db, "SELECT domain, url FROM pages WHERE run_id = ?", run)) == expected


def test_single_machine_crawl_imports_no_redis() -> None:
    """``census run`` needs no Redis: only the distributed modules import it."""
    code = ("import sys, crawler.cli, crawler.census, crawler.crawl.spider, "
            "crawler.crawl.pipelines, crawler.crawl.extensions, crawler.crawl.middlewares; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('redis', 'scrapy_redis')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True).stdout
    assert out.strip() == "[]"


def test_worker_without_redis_is_one_line_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once closed
    result = CliRunner().invoke(cli, ["worker", "--redis", f"redis://127.0.0.1:{port}/0"])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: Redis at redis://127.0.0.1:{port}/0:")


def test_dead_workers_requests_and_sites_are_handed_on(redis_url: str) -> None:
    """What a worker took and did not finish goes back: its in-flight requests to the head
    of their sites' frontiers, its sites to the head of the queue of sites."""
    from scrapy_redis import picklecompat

    server = connect_redis(redis_url)
    keys = Keys("7-test")
    server.rpush(keys.sites, "b.kp")
    inflight = picklecompat.dumps(Request("http://a.kp/p1", meta={"census_site": "a.kp"})
                                  .to_dict())
    server.lpush(keys.frontier("a.kp"), b"queued")
    server.rpush(keys.inflight("w0"), inflight)
    server.rpush(keys.held("w0"), "a.kp")
    server.sadd(keys.workers, "w0", "w1")
    server.set(keys.alive("w1"), 1, px=3000)  # w1 is alive, w0 stopped renewing its key

    assert requeue_dead(server, keys) == 1
    assert server.lrange(keys.sites, 0, -1) == [b"a.kp", b"b.kp"]
    assert server.lrange(keys.frontier("a.kp"), 0, -1) == [b"queued", inflight]  # popped next
    assert not server.exists(keys.inflight("w0")) and not server.exists(keys.held("w0"))
    assert server.smembers(keys.workers) == {b"w1"}
    assert (int(server.get(keys.requeued)), int(server.get(keys.handed))) == (1, 1)
    assert requeue_dead(server, keys) == 0  # w1 keeps its work


def test_run_options_keep_no_redis_password() -> None:
    from crawler.census import CensusOptions, recorded

    kept = recorded(CensusOptions(crawl={"redis": "redis://:s3cret@10.0.0.1:6380/0"}))
    assert kept["crawl"]["redis"] == "redis://:***@10.0.0.1:6380/0"
