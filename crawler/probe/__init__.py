"""The DNS stage: enumerate a zone into the census.

Phases, in order, each writing as it goes: nameservers and zone transfers (recursively into
every delegation), seed names, wordlist probing with wildcard detection, NSEC walking / NSEC3
chain collection and offline cracking, a PTR sweep of the national ranges, the domains found
delegated (asked of the parent's own servers), then every record type of every registrable
domain and its ``www.`` / ``mail.`` hosts.

Time bound when nothing answers: a server is given up after ``dead_after`` (3) failed queries
in a row, each costing at most ``(retries + 1) * timeout`` plus the backoffs; a query in
flight then stops at its next try.  Later phases find the server given up and return at once,
so a dead resolver holds the whole probe at most ``Limits.give_up_seconds()`` =
``3 * ((retries + 1) * timeout + backoffs) + timeout``: 3 * (3 * 3 s + 0.75 s) + 3 s =
32.25 s with the kp profile's politeness, whatever the number of phases.
"""

from __future__ import annotations

import asyncio
import logging

import sqlite_utils

from ..db import Method, run_domains
from ..names import normalize_name
from ..profiles import Profile, read_wordlist
from .context import Context
from .nsec import crack_chains, examine_zone
from .options import Outcome, ProbeOptions, ProbeResult, ProgressCallback
from .ptr import ptr_sweep
from .records import collect_records
from .seeds import probe_seeds
from .wordlist import wordlist_sweep
from .zones import delegated_domains, enumerate_zones

__all__ = [
    "Outcome",
    "ProbeOptions",
    "ProbeResult",
    "ProgressCallback",
    "probe_names",
    "probe_run",
]

log = logging.getLogger(__name__)


def probe_run(
    db: sqlite_utils.Database,
    run_id: int,
    profile: Profile,
    options: ProbeOptions,
    progress: ProgressCallback | None = None,
) -> ProbeResult:
    """Enumerate ``profile.zone`` into run ``run_id`` of the census; say how it went."""
    return asyncio.run(_probe(db, run_id, profile, options, progress))


async def _probe(
    db: sqlite_utils.Database,
    run_id: int,
    profile: Profile,
    options: ProbeOptions,
    progress: ProgressCallback | None,
) -> ProbeResult:
    ctx = Context.for_run(db, run_id, profile, options, progress)
    if not ctx.resolvers:
        return ProbeResult("failed", "no resolver: none given and none configured")
    states = await enumerate_zones(ctx)
    seeds = []
    if options.seeds:
        seeds += [(s.name, Method.SEED, s.source) for s in profile.seeds]
    for name in options.extra_names:
        clean = normalize_name(name)
        if clean:
            seeds.append((clean, Method.LINK, "link"))
    if seeds:
        await probe_seeds(ctx, seeds)
    labels = read_wordlist(profile) if options.wordlist is None else list(options.wordlist)
    if labels:
        await wordlist_sweep(ctx, labels)
    for state in states:
        await examine_zone(ctx, state.zone)
    crack_chains(ctx, labels)
    ranges = profile.ranges if options.ip_ranges is None else options.ip_ranges
    if ranges:
        await ptr_sweep(ctx, tuple(ranges))
    done = {state.zone for state in states}
    hidden = await delegated_domains(
        ctx, [d for d in run_domains(db, run_id) if d not in done], states
    )
    if hidden:
        await enumerate_zones(ctx, hidden, done)
    await collect_records(ctx)
    return _result(ctx)


def probe_names(
    db: sqlite_utils.Database,
    run_id: int,
    profile: Profile,
    options: ProbeOptions,
    sightings: list[tuple[str, str, str]],
) -> list[str]:
    """See names found outside the DNS (``(name, method, source)``, e.g. in crawled links).

    Every name under the zone becomes a sighting, whether or not it resolves: a link is
    evidence of its own.  The records of the registrable domains that are new to the run are
    then collected as for any domain; returns those domains.
    """
    return asyncio.run(_probe_names(db, run_id, profile, options, sightings))


async def _probe_names(
    db: sqlite_utils.Database,
    run_id: int,
    profile: Profile,
    options: ProbeOptions,
    sightings: list[tuple[str, str, str]],
) -> list[str]:
    ctx = Context.for_run(db, run_id, profile, options)
    known = set(run_domains(db, run_id))
    with db.atomic():
        for name, method, source in sightings:
            ctx.see(name, method, source)
    new = sorted(set(run_domains(db, run_id)) - known)
    if new and ctx.resolvers:
        await collect_records(ctx, new)
    return new


def _result(ctx: Context) -> ProbeResult:
    engine = ctx.engine
    domains = len(run_domains(ctx.db, ctx.run_id))
    transfers = ctx.db.execute(
        "SELECT COUNT(*) FROM axfr_attempts WHERE run_id = ? AND outcome = ?",
        [ctx.run_id, Outcome.SUCCESS],
    ).fetchone()[0]
    first_seen = ctx.db.execute(
        "SELECT COUNT(*) FROM domains WHERE first_seen_run = ?", [ctx.run_id]
    ).fetchone()[0]
    silent = [f"{a}:{p}" for a, p in engine.silent_servers()]
    parts = [
        f"{domains} domains ({first_seen} seen for the first time), "
        f"{transfers} zone transfers succeeded",
        f"{engine.answered} queries answered, {engine.timeouts} timeouts",
    ]
    if silent:
        parts.append("never answered: " + ", ".join(sorted(silent)))
    parts += ctx.notes
    if engine.answered == 0 and transfers == 0:
        status = "failed"
        parts.insert(0, "nothing answered")
    elif silent:
        status = "partial"
    else:
        status = "complete"
    return ProbeResult(status, "; ".join(parts), domains, engine.answered, engine.timeouts)
