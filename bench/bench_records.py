"""Bench the DNS phases at volume through one local Unbound: wordlist sweep + record phase.

    python bench/bench_records.py [--wordlist 100000] [--hits 2000] [--in-flight 200]
                                  [--rounds 3] [--massdns PATH]

Knot (loopback) serves a ``kp`` zone of ``--hits`` domains (A, MX, TXT, www. and mail.
hosts); Unbound (loopback, iterator only, the zone as a stub) is the resolver.  The census's
wordlist sweep asks ``--wordlist`` labels (``--hits`` of them exist), then its record phase
asks the 8 types of each domain and its www./mail. hosts (24 queries a domain), answers
stored in a fresh census.  Baselines in the same run, on the same questions through the same
Unbound with ``--in-flight`` outstanding: massdns (C; not in Debian: build it from source and
pass ``--massdns PATH``, see bench/README.md), one run per record type, answers to a file;
and dnsperf (DNS-OARC, C, from Debian).  Unbound's cache is warmed by one baseline pass
first, so every measured pass sees the same warm cache.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from crawler.db import open_census, run_domains, start_run
from crawler.lab.knot import Knot, free_port, knot_available
from crawler.probe.context import Context, limits_for
from crawler.probe.engine import Engine
from crawler.probe.options import ProbeOptions
from crawler.probe.records import HOSTS, TYPES, collect_records
from crawler.probe.wordlist import wordlist_sweep
from crawler.profiles import Profile

KNOT = "127.0.0.3"
UNBOUND = "127.0.0.4"


def zone_text(hits: int) -> str:
    lines = ["$ORIGIN kp.", "$TTL 3600", "@ SOA ns1.kp. root.kp. 1 3600 600 86400 3600",
             "@ NS ns1.kp.", f"ns1 A {KNOT}"]
    for i in range(hits):
        name = f"h{i:05d}"
        lines += [f"{name} A 127.1.{i // 250}.{i % 250 + 1}", f"{name} MX 10 mail.{name}.kp.",
                  f'{name} TXT "v=spf1 -all"', f"www.{name} A 127.1.{i // 250}.{i % 250 + 1}",
                  f"mail.{name} A 127.2.{i // 250}.{i % 250 + 1}"]
    return "\n".join(lines) + "\n"


def run_unbound(workdir: Path, interface: str, port: int, more: str) -> subprocess.Popen[bytes]:
    """An Unbound in the foreground on ``interface``:``port``; ``more`` adds settings and zones
    (each bench gives it what it stands for: a stub to Knot, or answers of its own)."""
    conf = workdir / "unbound.conf"
    conf.write_text(f"""server:
    interface: {interface}
    port: {port}
    do-ip6: no
    do-daemonize: no
    use-syslog: no
    logfile: ""
    chroot: ""
    username: ""
    directory: "{workdir}"
    pidfile: "{workdir}/unbound.pid"
    access-control: 127.0.0.0/8 allow
    num-threads: 1
    so-rcvbuf: 4m
    verbosity: 0
{more}
remote-control:
    control-enable: no
""")
    process = subprocess.Popen(["unbound", "-d", "-c", str(conf)], stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    return process


def start_unbound(workdir: Path, port: int, knot_port: int) -> subprocess.Popen[bytes]:
    """The resolver the record bench asks: a cache in front of Knot, which serves the zone."""
    return run_unbound(workdir, UNBOUND, port, f"""    do-not-query-localhost: no
    msg-cache-size: 64m
    rrset-cache-size: 128m
    module-config: "iterator"
    qname-minimisation: no
stub-zone:
    name: "kp"
    stub-addr: {KNOT}@{knot_port}""")


def dnsperf(port: int, queries: Path, in_flight: int) -> tuple[float, float]:
    """Seconds and queries per second of dnsperf sending ``queries`` once."""
    started = time.perf_counter()
    done = subprocess.run(
        ["dnsperf", "-s", UNBOUND, "-p", str(port), "-d", str(queries), "-q", str(in_flight),
         "-n", "1", "-t", "5"], capture_output=True, text=True, check=False,
    )
    elapsed = time.perf_counter() - started
    found = re.search(r"Queries per second:\s+([\d.]+)", done.stdout)
    return elapsed, float(found.group(1)) if found else 0.0


def massdns(binary: str, workdir: Path, port: int, lists: dict[str, list[str]],
            in_flight: int) -> tuple[float, int, float, str]:
    """Seconds of massdns asking every ``{type: names}`` (one run per type, as massdns asks
    one type a run), answers to a file; the lines it wrote and its CPU seconds."""
    resolvers = workdir / "resolvers.txt"
    resolvers.write_text(f"{UNBOUND}:{port}\n")
    root = ["--root"] if os.geteuid() == 0 else []  # else it drops to nobody and cannot write
    records = 0
    before = os.times()
    started = time.perf_counter()
    for rdtype, names in lists.items():
        names_file = workdir / f"massdns-{rdtype}.txt"
        names_file.write_text("\n".join(names) + "\n")
        out = workdir / f"massdns-{rdtype}.out"
        subprocess.run(
            [binary, "-r", str(resolvers), "-t", rdtype, "-s", str(in_flight), "-o", "S",
             "-w", str(out), "-q", *root, str(names_file)], check=True,
        )
    elapsed = time.perf_counter() - started
    after = os.times()
    cpu = after.children_user + after.children_system - before.children_user \
        - before.children_system
    split = (f"user {after.children_user - before.children_user:.2f} s + system "
             f"{after.children_system - before.children_system:.2f} s")
    for rdtype in lists:
        records += len((workdir / f"massdns-{rdtype}.out").read_text().splitlines())
    return elapsed, records, cpu, split


def census_pass(workdir: Path, port: int, labels: list[str], in_flight: int) -> dict:
    db = open_census(workdir / f"census-{time.monotonic_ns()}.db")
    run_id = start_run(db, "kp", {})
    profile = Profile(zone="kp")
    options = ProbeOptions(resolvers=((UNBOUND, port),), queries_in_flight=in_flight,
                           queries_per_second=1e9, timeout=3.0, retries=2)
    ctx = Context(db, run_id, profile, options, Engine(limits_for(profile, options)),
                  [(UNBOUND, port)])

    async def main() -> tuple[float, float, int]:
        started = time.perf_counter()
        await wordlist_sweep(ctx, labels)
        swept = time.perf_counter()
        stored = await collect_records(ctx, run_domains(db, run_id))
        return swept - started, time.perf_counter() - swept, stored

    before = os.times()
    sweep_s, records_s, stored = asyncio.run(main())
    after = os.times()
    cpu = after.user + after.system - before.user - before.system
    split = f"user {after.user - before.user:.2f} s + system {after.system - before.system:.2f} s"
    return {"sweep": sweep_s, "records": records_s, "stored": stored,
            "domains": len(run_domains(db, run_id)), "cpu": cpu, "split": split,
            "queries": ctx.engine.answered + ctx.engine.timeouts,
            "timeouts": ctx.engine.timeouts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wordlist", type=int, default=100_000)
    parser.add_argument("--hits", type=int, default=2_000)
    parser.add_argument("--in-flight", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3,
                        help="Baseline and census passes, one after the other, this many times.")
    parser.add_argument("--massdns", metavar="PATH",
                        help="massdns binary (built from source: see bench/README.md); "
                        "without it the baseline is dnsperf.")
    args = parser.parse_args()
    if not knot_available() or not shutil.which("unbound"):
        raise SystemExit("needs knotd and unbound (apt-get install knot unbound)")
    if args.massdns is None and not shutil.which("dnsperf"):
        raise SystemExit("needs --massdns PATH or dnsperf (apt-get install dnsperf)")
    labels = [f"h{i:05d}" for i in range(args.hits)]
    labels += [f"x{i:06d}" for i in range(args.wordlist - args.hits)]
    # the census's own questions: A of every wordlist name, then the 8 types of each hit
    # and its www./mail. hosts
    hosts = [f"{host}{label}.kp" for label in labels[: args.hits] for host in HOSTS]
    questions = [(f"{label}.kp", "A") for label in labels]
    questions += [(host, rdtype) for host in hosts for rdtype in TYPES]
    lists = {rdtype: [n for n, t in questions if t == rdtype] for rdtype in TYPES}
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} at start; "
          f"{len(questions):,} questions, {args.in_flight} in flight")
    with tempfile.TemporaryDirectory(prefix="bench-records-") as tmp:
        workdir = Path(tmp)
        knot_port, port = free_port((KNOT,)), free_port((UNBOUND,))
        queries = workdir / "queries.txt"
        queries.write_text("".join(f"{name} {rdtype}\n" for name, rdtype in questions))
        with Knot(workdir / "knot", KNOT, knot_port, {"kp": zone_text(args.hits)}):
            unbound = start_unbound(workdir, port, knot_port)
            try:
                rounds(args, workdir, port, labels, queries, lists, len(questions))
            finally:
                unbound.terminate()
                unbound.wait(5)


def rounds(args: argparse.Namespace, workdir: Path, port: int, labels: list[str],
           queries: Path, lists: dict[str, list[str]], total: int) -> None:
    """Warm Unbound, then baseline and census passes in turn; print each ratio."""
    if shutil.which("dnsperf"):
        dnsperf(port, queries, args.in_flight)  # warms Unbound's cache
    else:
        massdns(args.massdns, workdir, port, lists, args.in_flight)
    ratios = []
    for i in range(1, args.rounds + 1):
        load = os.getloadavg()[0]
        if args.massdns:
            base_s, lines, cpu, split = massdns(args.massdns, workdir, port, lists,
                                                args.in_flight)
            base = f"massdns {base_s:.2f} s ({total / base_s:,.0f} q/s, {lines:,} lines " \
                   f"written, {cpu:.2f} s CPU: {split})"
        else:
            base_s, _ = dnsperf(port, queries, args.in_flight)
            base = f"dnsperf {base_s:.2f} s ({total / base_s:,.0f} q/s)"
        if args.massdns and shutil.which("dnsperf"):
            perf_s, _ = dnsperf(port, queries, args.in_flight)
            base += f"; dnsperf {perf_s:.2f} s"
        result = census_pass(workdir, port, labels, args.in_flight)
        census_s = result["sweep"] + result["records"]
        ratios.append(census_s / base_s)
        print(f"round {i} (load {load:.2f}): {base}")
        print(f"  census: wordlist sweep {result['sweep']:.2f} s + record phase "
              f"{result['records']:.2f} s = {census_s:.2f} s, {result['queries']:,} "
              f"queries ({result['queries'] / census_s:,.0f} q/s, "
              f"{result['timeouts']} timeouts), {result['domains']:,} domains, "
              f"{result['stored']:,} records stored, {result['cpu']:.2f} s CPU: {result['split']}")
        print(f"  ratio: census {census_s:.2f} s / {base.split()[0]} {base_s:.2f} s = "
              f"{census_s / base_s:.2f}x (target <= 1.5x)")
    ratios.sort()
    print(f"ratios: {', '.join(f'{r:.2f}' for r in ratios)}; median {ratios[len(ratios) // 2]:.2f}x"
          f"; load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
