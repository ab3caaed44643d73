"""Bench the DNS probe: engine queries per second, and AXFR of a zone of 100,000 delegations.

    python bench/bench_probe.py [--delegations 100000] [--queries 20000]

Everything runs on loopback: a Knot started here (zone file generated here) and the lab world.
Baselines in the same run: ``kdig axfr`` (knot-dnsutils) and dnspython's ``query.xfr``.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import dns.query
import dns.xfr
import dns.zone

from crawler.db import open_census, start_run
from crawler.lab.knot import Knot, free_port, knot_available
from crawler.probe.axfr import drain, store_spool
from crawler.probe.context import Context, limits_for
from crawler.probe.engine import Engine, Limits, Server, bounded
from crawler.probe.options import ProbeOptions
from crawler.probe.zones import ZoneState, index_transfer, transfer
from crawler.profiles import Profile

ADDRESS = "127.0.0.3"
SOA = "@ SOA ns1.bench.kp. root.bench.kp. 1 3600 600 86400 3600\n"


def peak_rss_mb() -> float:
    """This process's own peak RSS (``VmHWM``): ``ru_maxrss`` of a spawned process starts at
    its parent's peak when it forked (Linux keeps it across exec), here the zone text."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate_zone(delegations: int) -> str:
    """A ``kp`` zone with ``delegations`` registrable domains, two NS each."""
    lines = ["$ORIGIN kp.", "$TTL 3600", SOA, "@ NS ns1.kptc.kp.", "ns1.kptc A 127.0.0.3"]
    for i in range(delegations):
        lines.append(f"d{i:06d} NS ns1.kptc.kp.")
        lines.append(f"d{i:06d} NS ns2.kptc.kp.")
    return "\n".join(lines) + "\n"


def engine_qps(server: Server, names: list[str], in_flight: int, fast: bool = False) -> float:
    """Queries per second of the engine against ``server``, with no per-second limit.

    ``fast`` asks through the sweep fast path (``Engine.sweep``), else ``Engine.query``.
    """
    engine = Engine(Limits(queries_in_flight=in_flight, queries_per_second=0, timeout=2,
                           retries=1))
    ask = engine.sweep if fast else engine.query

    async def main() -> None:
        with engine.sweeping():
            async for _ in bounded(names, lambda n: ask(server, n, "A"), in_flight):
                pass

    started = time.perf_counter()
    asyncio.run(main())
    return len(names) / (time.perf_counter() - started)


def _census_axfr(port: int, path: str, out: multiprocessing.Queue) -> None:
    """In a fresh process: AXFR into a fresh census, store, index; report times and memory."""
    db = open_census(path)
    run_id = start_run(db, "kp", {})
    profile = Profile(zone="kp")
    options = ProbeOptions(ns_port=port, allow_net=("127.0.0.0/8",), timeout=5.0)
    ctx = Context(db, run_id, profile, options, Engine(limits_for(profile, options)), [])
    state = ZoneState("kp", None)
    started, cpu = time.perf_counter(), time.process_time()
    outcome = asyncio.run(transfer(ctx, state, "ns1.kptc.kp", ADDRESS))
    stored = time.perf_counter()
    subs = index_transfer(ctx, state, room=0)
    indexed = time.perf_counter()
    cpu = time.process_time() - cpu
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    row = next(db["axfr_attempts"].rows)
    out.put({
        "outcome": str(outcome), "records": row["records"], "drain+parse+store": stored - started,
        "sightings": indexed - stored, "domains": db["domains"].count, "subs": len(subs),
        "peak_rss_mb": peak_rss_mb(),
        "parser_rss_mb": child.ru_maxrss / 1024,
        "cpu": cpu, "parser_cpu": child.ru_utime + child.ru_stime,
    })


def _parse_store(spool_path: str, path: str, fast: bool, out: multiprocessing.Queue) -> None:
    """In a fresh process: parse and store a drained spool into a fresh census, timed."""
    db = open_census(path)
    run_id = start_run(db, "kp", {})
    with open(spool_path, "rb") as spool:
        started = time.perf_counter()
        parser = store_spool(db, run_id, "kp", spool, "axfr:kp@bench", fast=fast)
        out.put({"seconds": time.perf_counter() - started, "records": parser.records,
                 "fallbacks": parser.fallbacks})


def in_child(target, *args: object) -> dict:
    """Run ``target(*args, queue)`` in a spawn child (fresh memory figures) and return its dict."""
    ctx = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue = ctx.Queue()
    child = ctx.Process(target=target, args=(*args, queue))
    child.start()
    result = queue.get()
    child.join()
    return result


def census_axfr(port: int, workdir: Path) -> dict:
    return in_child(_census_axfr, port, str(workdir / "bench.db"))


def parse_store(workdir: Path, fast: bool) -> dict:
    """Parse + store of the spool ``drain_only`` left, by the fast reader or by dnspython."""
    db = workdir / f"parse-{fast}.db"
    return in_child(_parse_store, str(workdir / "spool"), str(db), fast)


def drain_only(port: int, workdir: Path) -> tuple[float, int]:
    """The census's own reading of the stream into a spool, with no parsing."""
    with open(workdir / "spool", "w+b") as spool:
        started = time.perf_counter()
        drained = asyncio.run(drain(ADDRESS, port, "kp", spool, timeout=5.0, total=120.0))
        return time.perf_counter() - started, drained.size


def kdig_axfr(port: int, workdir: Path) -> tuple[float, int, float] | None:
    """``kdig AXFR`` to a file, as a user would fetch a zone: wall seconds, records, CPU s."""
    if not shutil.which("kdig"):
        return None
    out = workdir / "kdig.txt"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with open(out, "wb") as sink:
        subprocess.run(["kdig", f"@{ADDRESS}", "-p", str(port), "kp", "AXFR", "+nostats"],
                       stdout=sink, check=False)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    with open(out, "rb") as text:
        return elapsed, sum(1 for line in text if line[:1] not in (b";", b"\n")), cpu


def dnspython_xfr(port: int) -> tuple[float, str]:
    started = time.perf_counter()
    try:
        zone = dns.zone.Zone("kp")
        dns.query.inbound_xfr(ADDRESS, zone, port=port, timeout=60, lifetime=300)
        note = f"{sum(len(n) for n in zone.nodes.values())} rdatasets"
    except Exception as exc:
        note = f"failed: {type(exc).__name__} {exc}"
    return time.perf_counter() - started, note


def lab_qps(queries: int) -> tuple[float, float] | None:
    try:
        from crawler.lab import LabDNS, load_world
        from crawler.lab import free_port as lab_free_port
    except ImportError:
        return None
    world = load_world("kp")
    with LabDNS(world, lab_free_port(world.addresses())) as lab:
        names = [f"w{i}.com.kp" for i in range(queries)]
        return engine_qps(lab.resolver, names, 16), engine_qps(lab.resolver, names, 16, True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delegations", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=20_000)
    parser.add_argument("--no-dnspython", action="store_true",
                        help="Skip the dnspython baselines (minutes at 1 M names).")
    args = parser.parse_args()
    if not knot_available():
        raise SystemExit("knotd is not installed (apt-get install knot)")
    with tempfile.TemporaryDirectory(prefix="bench-probe-") as tmp:
        workdir = Path(tmp)
        port = free_port((ADDRESS,))
        started = time.perf_counter()
        zone = generate_zone(args.delegations)
        with Knot(workdir / "knot", ADDRESS, port, {"kp": zone}, allow_transfer=True):
            print(f"zone: {args.delegations} delegations, {len(zone) / 1e6:.1f} MB text, "
                  f"generated and loaded by knot in {time.perf_counter() - started:.1f} s")
            names = [f"d{i % args.delegations:06d}.kp" if i % 2 else f"x{i}.kp"
                     for i in range(args.queries)]
            for window in (16, 64, 128):
                slow = engine_qps((ADDRESS, port), names, window)
                fast = engine_qps((ADDRESS, port), names, window, fast=True)
                print(f"engine vs knot, {window:>3} in flight, {len(names):,} names: "
                      f"query {slow:,.0f} q/s, sweep {fast:,.0f} q/s ({fast / slow:.1f}x)")
            result = census_axfr(port, workdir)
            print(f"census AXFR ({result['outcome']}): {result['records']:,} records, "
                  f"drain+parse+store {result['drain+parse+store']:.1f} s "
                  f"({result['records'] / result['drain+parse+store']:,.0f} records/s), "
                  f"then sightings {result['sightings']:.1f} s ({result['domains']:,} domains), "
                  f"peak RSS {result['peak_rss_mb']:.0f} MB, "
                  f"forked parser {result['parser_rss_mb']:.0f} MB")
            seconds, size = drain_only(port, workdir)
            print(f"drain only (spool, no parse): {seconds:.2f} s, {size / 1e6:.1f} MB")
            readers = [(True, "fast reader")]
            if not args.no_dnspython:
                readers.append((False, "dnspython reference"))
            for fast, label in readers:
                ps = parse_store(workdir, fast)
                print(f"parse+store of that spool, {label}: {ps['seconds']:.2f} s "
                      f"({ps['records'] / ps['seconds']:,.0f} records/s, "
                      f"{ps['fallbacks']} messages to dnspython)")
            kdig = kdig_axfr(port, workdir)
            if kdig:
                print(f"baseline kdig axfr to a file: {kdig[0]:.2f} s, {kdig[1]:,} records, "
                      f"{kdig[2]:.2f} s CPU")
                census = result["drain+parse+store"] + result["sightings"]
                print(f"ratio: AXFR until every delegation is a domains row {census:.1f} s / "
                      f"kdig {kdig[0]:.2f} s = {census / kdig[0]:.1f}x (target <= 4x), "
                      f"peak RSS {result['peak_rss_mb']:.0f} MB + parser "
                      f"{result['parser_rss_mb']:.0f} MB (target <= 500 MB)")
                print(f"CPU seconds: census {result['cpu']:.1f} + forked parser "
                      f"{result['parser_cpu']:.1f} (they overlap: two cores), kdig "
                      f"{kdig[2]:.1f}; load {os.getloadavg()[0]:.1f} (other work on the machine)")
            if not args.no_dnspython:
                elapsed, note = dnspython_xfr(port)
                print(f"baseline dnspython inbound_xfr: {elapsed:.1f} s, {note}")
    qps = lab_qps(min(args.queries, 3000))
    if qps is not None:
        print(f"engine vs lab resolver, 16 in flight: query {qps[0]:,.0f} q/s, "
              f"sweep {qps[1]:,.0f} q/s")


if __name__ == "__main__":
    main()
