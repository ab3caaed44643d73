"""Bench the whole census of a generated zone of a million delegations, twice.

    python bench/bench_census_1m.py [--delegations 1000000] [--sample 50]

Everything runs on loopback, started here:

- Knot (``crawler/lab/knot.py``, 127.0.0.3) serves ``kp``: ``--delegations`` domains, each
  delegated to ``ns1``/``ns2.kptc.kp``, open to AXFR.
- Unbound (127.0.0.4) stands for the recursive resolver the census is given.  It answers for
  every name under ``kp`` itself (``local-zone: redirect``: A 127.0.0.5 and NS
  ``ns1.kptc.kp``, with the zone's SOA) and ``ns1``/``ns2.kptc.kp`` as 127.0.0.3.  A real
  resolver would follow each delegation to the domain's own servers; a million child zones
  on one machine are not the point of the bench, the census's own work is: every domain is
  asked and answered.
- A web server (127.0.0.5) answers every host with a small page and two links.

The census profile (written here) asks the record phase for **A and NS of each domain's
apex** (``[records] types = ["A", "NS"], hosts = [""]``: 2 questions a domain instead of
the default 24 -- at a million domains the default is 24 M queries, a day at the politeness
of a national zone); no seeds, wordlist or PTR ranges.  The crawl takes a **sample** of
``--sample`` domains (every 1/sample-th, so the same ones in both runs; ``crawl.domains``),
at most 3 pages each, no browser, no WACZ.  Then classify, and compare with the run before.

Run 1 censuses the zone; run 2 the zone changed (1 % of delegations gone, as many new ones,
the serial up).  For each run: seconds per stage (and per probe phase, from the progress
ticks), peak RSS of the census process and of its children (the crawl's Scrapy process and
the forked AXFR parser), figures of the compare.  Each run is a fresh ``spawn`` process; its
own peak is read from ``VmHWM`` (``ru_maxrss`` would start at this script's peak), its
children's from ``ru_maxrss``, an upper bound for the same reason.  ``--delegations 300`` runs in
a minute or two, for a test.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import resource
import shutil
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench_probe import peak_rss_mb  # the bench's own folder: run as bench/bench_census_1m.py
from bench_records import run_unbound

from crawler.lab.knot import Knot, free_port, knot_available

KNOT = "127.0.0.3"
RESOLVER = "127.0.0.4"
WEB = "127.0.0.5"
SOA = "ns1.kptc.kp. root.kptc.kp. {serial} 3600 600 86400 3600"
PURPOSES = [
    ("News of the day", "news article editor report daily newspaper press agency"),
    ("Online shop", "shop cart buy price order product delivery store"),
    ("Ministry", "government ministry official policy public administration service"),
]


def labels(delegations: int, version: int) -> list[str]:
    """The delegated labels of the zone: version 2 drops every 100th and adds as many."""
    base = [f"d{i:07d}" for i in range(delegations)]
    if version == 1:
        return base
    gone = set(range(0, delegations, 100))
    return [b for i, b in enumerate(base) if i not in gone] + [
        f"n{i:07d}" for i in range(len(gone))
    ]


def zone_text(delegations: int, version: int) -> str:
    """The zone file, written into one buffer: a list of 2 M lines would raise this process's
    peak RSS, which the spawned census inherits in ``ru_maxrss``."""
    out = io.StringIO()
    out.write("\n".join(["$ORIGIN kp.", "$TTL 3600", "@ SOA " + SOA.format(serial=version),
                         "@ NS ns1.kptc.kp.", "@ NS ns2.kptc.kp.",
                         f"ns1.kptc A {KNOT}", f"ns2.kptc A {KNOT}"]) + "\n")
    for label in labels(delegations, version):
        out.write(f"{label} NS ns1.kptc.kp.\n{label} NS ns2.kptc.kp.\n")
    return out.getvalue()


def profile_text() -> str:
    return """zone = "kp"
title = "bench: a generated zone of delegations"

[politeness]
queries_in_flight = 200
queries_per_second = 1000000
timeout = 3.0
retries = 2
axfr_timeout = 300.0
crawl_delay = 0.0
max_pages = 3

[records]
types = ["A", "NS"]
hosts = [""]
"""


def start_unbound(workdir: Path, port: int) -> subprocess.Popen[bytes]:
    """The resolver of the whole census: it answers for every name under the zone itself."""
    return run_unbound(workdir, RESOLVER, port, f"""    local-zone: "kp." redirect
    local-data: "kp. 3600 IN SOA {SOA.format(serial=1)}"
    local-data: "kp. 3600 IN NS ns1.kptc.kp."
    local-data: "kp. 3600 IN A {WEB}"
    local-zone: "kptc.kp." static
    local-data: "ns1.kptc.kp. 3600 IN A {KNOT}"
    local-data: "ns2.kptc.kp. 3600 IN A {KNOT}"
""")


class Page(BaseHTTPRequestHandler):
    """Every host: a home page of one of three purposes, linking to two more pages."""

    def do_GET(self) -> None:
        host = (self.headers.get("Host") or "x").split(":")[0]
        if self.path == "/robots.txt":
            self.send_error(404)
            return
        title, words = PURPOSES[sum(map(ord, host)) % len(PURPOSES)]
        body = (f"<html><head><title>{title} {host}</title></head><body><h1>{title}</h1>"
                f"<p>{words} {words}</p><a href='/about'>about</a> <a href='/contact'>"
                f"contact</a></body></html>").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def _census(options: dict[str, Any], out: multiprocessing.Queue) -> None:
    """In a fresh process: one ``census run``, each stage timed; report times and memory."""
    import logging

    from crawler import census
    from crawler import stages as census_stages
    from crawler.db import get_run, open_census

    logging.basicConfig(level=logging.WARNING)
    stages: dict[str, float] = {}
    phases: dict[str, float] = {}
    started = time.perf_counter()

    def timed(name: str, fn: census_stages.StageFn) -> census_stages.StageFn:
        def run(*args: Any) -> census_stages.StageResult:
            begun = time.perf_counter()
            try:
                return fn(*args)
            finally:
                stages[name] = time.perf_counter() - begun
        return run

    for name, fn in list(census.STAGE_FUNCTIONS.items()):
        census.STAGE_FUNCTIONS[name] = timed(name, fn)

    def progress(phase: str, done: int, total: int | None) -> None:
        phases.setdefault(phase, time.perf_counter() - started)

    run_id = census.run_census(census.CensusOptions(**options), census.STAGES, progress)
    db = open_census(options["db_path"])
    run = get_run(db, run_id)
    counts = {t: db.execute(f"SELECT count(*) FROM {t} WHERE run_id = ?", [run_id]).fetchone()[0]
              for t in ("sightings", "dns_records", "sites", "pages")}
    self_rss = peak_rss_mb()
    children_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    out.put({"run": run_id, "status": run["status"], "message": run["message"],
             "stages": stages, "phases": phases, "total": time.perf_counter() - started,
             "counts": counts, "rss": self_rss, "children_rss": children_rss})


def census_run(options: dict[str, Any]) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue = ctx.Queue()
    child = ctx.Process(target=_census, args=(options, queue))
    child.start()
    result = queue.get()
    child.join()
    return result


def report(label: str, result: dict[str, Any]) -> None:
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in result["stages"].items())
    phases = sorted(result["phases"].items(), key=lambda kv: kv[1])
    starts = ", ".join(f"{k} @{v:.1f}" for k, v in phases)
    print(f"{label}: run {result['run']} {result['status']} in {result['total']:.1f} s; "
          f"stages: {stages}")
    print(f"  probe phases start (s after the run began): {starts}")
    print(f"  rows of the run: {result['counts']}")
    print(f"  peak RSS: census process {result['rss']:.0f} MB (VmHWM), largest child "
          f"{result['children_rss']:.0f} MB (ru_maxrss: at least this script's peak)")
    print(f"  message: {(result['message'] or '')[:600]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delegations", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=50)
    parser.add_argument("--keep", metavar="DIR", help="Write the census here and keep it.")
    args = parser.parse_args()
    if not knot_available() or not shutil.which("unbound"):
        raise SystemExit("needs knotd and unbound (apt-get install knot unbound)")
    with tempfile.TemporaryDirectory(prefix="bench-census-") as tmp:
        workdir = Path(tmp)
        out = Path(args.keep) if args.keep else workdir / "out"
        out.mkdir(parents=True, exist_ok=True)
        (workdir / "bench.toml").write_text(profile_text())
        step = max(1, args.delegations // args.sample)
        sample = [f"d{i:07d}.kp" for i in range(1, args.delegations, step)][: args.sample]
        knot_port, dns_port, web_port = (free_port((KNOT,)), free_port((RESOLVER,)),
                                         free_port((WEB,)))
        web = ThreadingHTTPServer((WEB, web_port), Page)
        threading.Thread(target=web.serve_forever, daemon=True).start()
        unbound = start_unbound(workdir, dns_port)
        options = {
            "zone": "kp", "db_path": str(out / "census.db"), "out_dir": str(out),
            "profile_path": str(workdir / "bench.toml"),
            "resolvers": (f"{RESOLVER}:{dns_port}",), "ns_port": knot_port,
            "seeds": False, "wordlist": False, "ip_ranges": (), "allow_nets": ("127.0.0.0/8",),
            "crawl": {"domains": sample, "http_port": web_port, "max_pages": 3, "delay": 0,
                      "browser": "never", "wacz": False, "ignore_robots": True},
        }
        try:
            for version in (1, 2):
                began = time.perf_counter()
                text = zone_text(args.delegations, version)
                with Knot(workdir / f"knot{version}", KNOT, knot_port, {"kp": text},
                          allow_transfer=True):
                    print(f"zone v{version}: {args.delegations:,} delegations, "
                          f"{len(text) / 1e6:.0f} MB, loaded by knot in "
                          f"{time.perf_counter() - began:.1f} s")
                    del text
                    report(f"census {version}", census_run(options))
        finally:
            unbound.terminate()
            unbound.wait()
            web.shutdown()


if __name__ == "__main__":
    main()
