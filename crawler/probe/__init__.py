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
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import sqlite_utils

from ..db import Method, run_domains
from ..names import normalize_name
from ..profiles import Profile, read_wordlist
from .answers import AnswerLog
from .context import Context
from .engine import Answer, Rcode, bounded
from .nsec import crack_chains, examine_zone
from .options import Outcome, ProbeOptions, ProbeResult, ProgressCallback
from .phases import PhaseLog
from .ptr import ptr_sweep
from .records import collect_records
from .seeds import EXISTS, probe_seeds
from .wordlist import wordlist_sweep
from .zones import ZoneState, delegated_domains, enumerate_zones

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
    answers = ctx.engine.answers = AnswerLog(db, run_id)
    try:
        result = await _phases(ctx, profile, options)
    except BaseException:
        with contextlib.suppress(Exception):
            answers.save()  # stopped: what was answered is kept for the resume
        raise
    answers.close()
    return result


async def _phases(ctx: Context, profile: Profile, options: ProbeOptions) -> ProbeResult:
    db, run_id = ctx.db, ctx.run_id
    denied = await _zone_denied(ctx)
    if denied:
        return ProbeResult("failed", denied, 0, ctx.engine.answered, ctx.engine.timeouts)
    phases = ctx.phases = PhaseLog(ctx)
    handed = phases.finished("zones")
    if handed is None:
        phases.begin("zones")
        states = await enumerate_zones(ctx)
        phases.finish("zones", {"zones": [[s.zone, s.parent, s.stored_from] for s in states]})
    else:
        states = [ZoneState(z, parent, stored_from=source) for z, parent, source in handed["zones"]]
    seeds = []
    if options.seeds:
        seeds += [(s.name, Method.SEED, s.source) for s in profile.seeds]
    for name in options.extra_names:
        clean = normalize_name(name)
        if clean:
            seeds.append((clean, Method.LINK, "link"))
    labels = read_wordlist(profile) if options.wordlist is None else list(options.wordlist)
    ranges = profile.ranges if options.ip_ranges is None else options.ip_ranges

    async def hidden_zones() -> None:
        done = {state.zone for state in states}
        hidden = await delegated_domains(
            ctx, [d for d in _not_transferred(db, run_id) if d not in done], states
        )
        if hidden:
            await enumerate_zones(ctx, hidden, done)

    async def nsec() -> None:
        for state in states:
            await examine_zone(ctx, state.zone)

    async def crack() -> None:
        crack_chains(ctx, labels)

    steps: list[tuple[str, bool, Callable[[], Awaitable[Any]]]] = [
        ("seeds", bool(seeds), lambda: probe_seeds(ctx, seeds)),
        ("wordlist", bool(labels), lambda: wordlist_sweep(ctx, labels)),
        ("nsec", True, nsec),
        ("crack", True, crack),
        ("ptr", bool(ranges), lambda: ptr_sweep(ctx, tuple(ranges))),
        ("delegated", True, hidden_zones),
        ("records", True, lambda: collect_records(ctx)),
    ]
    for name, wanted, work in steps:
        if wanted and phases.finished(name) is None:
            phases.begin(name)
            await work()
            phases.finish(name)
    return _result(ctx)


def _not_transferred(db: sqlite_utils.Database, run_id: int) -> list[str]:
    """Domains of the run that no stored transfer saw, sorted.

    A stored transfer of the parent already says whether a domain it holds is delegated (its
    delegations became zones, up to ``--max-zones``); asking the resolver again would be a
    query per domain of a million-name zone.
    """
    return [d for (d,) in db.execute(
        "SELECT DISTINCT domain FROM sightings s WHERE run_id = ? AND domain IS NOT NULL "
        "AND NOT EXISTS (SELECT 1 FROM sightings t WHERE t.run_id = s.run_id "
        "AND t.domain = s.domain AND t.method = ?) ORDER BY domain",
        [run_id, Method.AXFR],
    )]


def probe_names(
    db: sqlite_utils.Database,
    run_id: int,
    profile: Profile,
    options: ProbeOptions,
    sightings: list[tuple[str, str, str]],
) -> list[str]:
    """Probe names found outside the DNS (``(name, method, source)``, e.g. in crawled links).

    A link is a lead, not proof of existence: every name under the zone is kept in ``leads``
    with what the resolver answered for its registrable domain, and only a domain the DNS
    says exists in this run becomes a sighting (and moves ``domains.last_seen_run``).  The
    records of the confirmed domains that are new to the run are then collected as for any
    domain; returns those domains.
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
    leads = []
    for name, method, source in sightings:
        clean = normalize_name(name)
        split = ctx.suffixes.split(clean) if clean and ctx.suffixes.in_zone(clean) else None
        if split:
            leads.append((clean, split[0], method, source))
    if not leads or not ctx.resolvers:
        return []

    async def ask(domain: str) -> Answer:
        return await ctx.engine.query(ctx.resolver_for(domain), domain, "SOA")

    # a crawl stage redone after a kill asks none of these again (:mod:`.answers`)
    kept = ctx.engine.answers = AnswerLog(db, run_id)
    kept.begin("links")
    answers = {}
    async for domain, answer in bounded(sorted({d for _, d, _, _ in leads}), ask, ctx.workers):
        answers[domain] = answer.rcode
    ctx.engine.answers = None
    with db.atomic():
        for name, domain, method, source in leads:
            rcode = answers.get(domain)
            confirmed = rcode in EXISTS
            db.execute(
                "INSERT OR REPLACE INTO leads (run_id, name, domain, method, source, rcode, "
                "confirmed) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [run_id, name, domain, method, source, str(rcode), int(confirmed)],
            )
            if confirmed:
                ctx.see(name, method, source)
    new = sorted(set(run_domains(db, run_id)) - known)
    if new:
        await collect_records(ctx, new)
    with db.conn:
        kept.finished("links")
    return new


TRY_RESOLVER = (
    "a filtering or captive resolver answers like this; try another one with "
    "--resolver HOST[:PORT]"
)


async def _zone_denied(ctx: Context) -> str | None:
    """Why the census cannot start, when every resolver says the zone does not exist."""
    zone = ctx.profile.zone
    said = {}
    for resolver in ctx.resolvers:
        answer = await ctx.engine.query(resolver, zone, "SOA")
        said[f"{resolver[0]}:{resolver[1]}"] = answer.rcode
    if said and all(rcode == Rcode.NXDOMAIN for rcode in said.values()):
        return (
            f"the resolver ({', '.join(said)}) answered NXDOMAIN for {zone}: it says the zone "
            f"does not exist; {TRY_RESOLVER}"
        )
    return None


def _result(ctx: Context) -> ProbeResult:
    engine = ctx.engine
    domains = ctx.db.execute(
        "SELECT count(DISTINCT domain) FROM sightings WHERE run_id = ? AND domain IS NOT NULL",
        [ctx.run_id],
    ).fetchone()[0]
    transfers = ctx.db.execute(
        "SELECT COUNT(*) FROM axfr_attempts WHERE run_id = ? AND outcome = ?",
        [ctx.run_id, Outcome.SUCCESS],
    ).fetchone()[0]
    first_seen = ctx.db.execute(
        "SELECT COUNT(*) FROM domains WHERE first_seen_run = ?", [ctx.run_id]
    ).fetchone()[0]
    silent = [f"{a}:{p}" for a, p in engine.silent_servers()]
    parts = [
        f"probe: {domains} domains ({first_seen} seen for the first time), "
        f"{transfers} zone transfers succeeded",
        f"{engine.answered} queries answered, {engine.timeouts} timeouts",
    ]
    if silent:
        parts.append("never answered: " + ", ".join(sorted(silent)))
    parts += ctx.notes
    zone = ctx.profile.zone
    servers = ctx.db.execute(
        "SELECT count(*) FROM nameservers WHERE run_id = ? AND zone = ? AND address IS NOT NULL",
        [ctx.run_id, zone],
    ).fetchone()[0]
    if engine.answered == 0 and transfers == 0:
        status = "failed"
        parts.insert(0, "nothing answered")
    elif servers == 0 and domains == 0:
        status = "failed"
        parts.insert(0, f"no nameservers found for {zone} and no domains: {TRY_RESOLVER}")
    elif silent:
        status = "partial"
    else:
        status = "complete"
    return ProbeResult(status, "; ".join(parts), domains, engine.answered, engine.timeouts)
