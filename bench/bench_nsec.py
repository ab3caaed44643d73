"""Bench the walk of signed zones: names per second and queries per name, beside ldns-walk.

    unshare -rn bash -c 'ip link set lo up; python bench/bench_nsec.py [--delegations 5000]'

A Knot started here signs a generated ``zz`` of ``--delegations`` registrable domains, nine in
ten of them secure delegations (a DS record), with NSEC, and a copy with NSEC3 (no salt, no
extra iterations).  The census walk (``probe.nsec.walk_nsec``) and the NSEC3 collection
(``collect_nsec3``) run against it; the baseline is ``ldns-walk`` (Debian ldnsutils) on the
same NSEC zone, whose queries are counted with strace.  ldns-walk has no port option, so Knot
listens on port 53: run the script in a network namespace of its own, as above.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from crawler.db import open_census, start_run
from crawler.lab.knot import Knot, free_port, knot_available
from crawler.probe.answers import AnswerLog
from crawler.probe.context import Context
from crawler.probe.engine import Engine, Limits
from crawler.probe.nsec import Nsec3Params, collect_nsec3, walk_nsec
from crawler.probe.options import ProbeOptions
from crawler.profiles import Profile

ADDRESS = "127.0.0.1"
SOA = "@ SOA ns1.nic.zz. hostmaster.nic.zz. 1 3600 600 86400 3600\n"


def generate_zone(origin: str, delegations: int) -> str:
    """``delegations`` registrable domains under ``origin``, nine in ten with a DS."""
    lines = [f"$ORIGIN {origin}.", "$TTL 3600", SOA, "@ NS ns1.nic.zz.", "@ NS ns2.nic.zz."]
    if origin == "zz":
        lines += ["ns1.nic A 127.0.0.1", "ns2.nic A 127.0.0.1"]
    for i in range(delegations):
        name = f"d{i:06d}"
        lines += [f"{name} NS ns1.host.zz.", f"{name} NS ns2.host.zz."]
        if i % 10:
            digest = hashlib.sha256(name.encode()).hexdigest()
            lines.append(f"{name} DS {i % 65536} 13 2 {digest}")
    return "\n".join(lines) + "\n"


def census_context(tmp: Path, port: int) -> Context:
    db = open_census(tmp / f"census-{time.monotonic_ns()}.db")
    run_id = start_run(db, "zz", {})
    profile = Profile(zone="zz", suffixes=("co",))
    options = ProbeOptions(ns_port=port, allow_net=("127.0.0.0/8",))
    engine = Engine(Limits(queries_in_flight=16, queries_per_second=0, timeout=2, retries=1))
    return Context(db, run_id, profile, options, engine, [])


def census_walk(tmp: Path, port: int, kept: bool = False) -> tuple[int, int, float, bool]:
    """The walk; ``kept``: each answer stored as the probe stage does (``probe.answers``)."""
    ctx = census_context(tmp, port)
    if kept:
        ctx.engine.answers = AnswerLog(ctx.db, ctx.run_id)
        ctx.engine.answers.begin("nsec")
    started = time.perf_counter()
    walk = asyncio.run(walk_nsec(ctx, "zz", [(ADDRESS, port)]))
    return walk.names, walk.queries, time.perf_counter() - started, walk.closed


def census_nsec3(tmp: Path, port: int) -> tuple[int, int, float, bool, int]:
    ctx = census_context(tmp, port)
    started = time.perf_counter()
    chain = asyncio.run(collect_nsec3(ctx, "co.zz", [(ADDRESS, port)],
                                      Nsec3Params(1, 0, 0, b"")))
    seconds = time.perf_counter() - started
    return len(chain.owners), chain.queries, seconds, chain.closed, chain.hashed


def ldns_walk(tmp: Path) -> tuple[int, int | None, float]:
    """Names ldns-walk lists (the apex not counted), the UDP/TCP sends strace saw, seconds."""
    command = ["ldns-walk", f"@{ADDRESS}", "zz"]
    started = time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    seconds = time.perf_counter() - started
    names = sum(1 for line in out.splitlines() if line.strip()) - 1
    queries = None
    if shutil.which("strace"):
        trace = tmp / "ldns.strace"
        subprocess.run(["strace", "-f", "-c", "-o", str(trace), "-e",
                        "trace=sendto,sendmsg,write", *command],
                       capture_output=True, check=True)
        queries = 0
        for line in trace.read_text().splitlines():
            fields = line.split()
            if fields and fields[-1] in ("sendto", "sendmsg"):
                queries += int(fields[3])
    return names, queries, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delegations", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not knot_available():
        raise SystemExit("knotd is not installed")
    with tempfile.TemporaryDirectory(prefix="bench-nsec-") as tmp_name:
        tmp = Path(tmp_name)
        zones = {"zz": generate_zone("zz", args.delegations),
                 "co.zz": generate_zone("co.zz", args.delegations)}
        port = 53
        try:
            knot = Knot(tmp / "knot", ADDRESS, port, zones, allow_transfer=False,
                        signing={"zz": "nsec", "co.zz": "nsec3-bare"})
            knot.start(wait=120)
        except RuntimeError:
            port = free_port((ADDRESS,))
            knot = Knot(tmp / "knot2", ADDRESS, port, zones, allow_transfer=False,
                        signing={"zz": "nsec", "co.zz": "nsec3-bare"})
            knot.start(wait=120)
            print("port 53 unavailable (run in a network namespace): no ldns-walk baseline")
        try:
            print(f"zz: {args.delegations} delegations, 90% secure, NSEC; co.zz: same, NSEC3")
            for _ in range(args.rounds):
                names, queries, seconds, closed = census_walk(tmp, port)
                ours = names / seconds
                line = (f"census walk: {names} names in {seconds:.2f} s = {ours:,.0f} names/s, "
                        f"{queries / names:.2f} queries/name, closed {closed}")
                if port == 53 and shutil.which("ldns-walk"):
                    lnames, lqueries, lseconds = ldns_walk(tmp)
                    theirs = lnames / lseconds
                    per = f"{lqueries / lnames:.2f}" if lqueries is not None else "?"
                    line += (f" | ldns-walk: {lnames} names in {lseconds:.2f} s = "
                             f"{theirs:,.0f} names/s, {per} queries/name"
                             f" | speed ratio {ours / theirs:.2f}")
                print(line)
                _, _, kept_seconds, _ = census_walk(tmp, port, kept=True)
                print(f"  the same walk keeping each answer (probe_answers): {kept_seconds:.2f} s"
                      f" = {kept_seconds / seconds:.2f}x the time")
            hashes, queries, seconds, closed, hashed = census_nsec3(tmp, port)
            print(f"census NSEC3 collection: {hashes} hashes in {seconds:.2f} s = "
                  f"{hashes / seconds:,.0f} hashes/s, {queries / hashes:.2f} queries/hash, "
                  f"{hashed:,} candidate names hashed, closed {closed}")
        finally:
            knot.stop()


if __name__ == "__main__":
    main()
