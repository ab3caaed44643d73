"""Wordlist probing under each suffix, with wildcard detection per zone.

A zone has a wildcard when random labels (several, 16 random characters each) answer; their
A/AAAA answer set is the wildcard's.  A wordlist name whose answer set equals it exists only
through the wildcard and is not a domain; the zone's ``wildcard`` column says so.
"""

from __future__ import annotations

import json
import logging
import secrets
import string
from collections.abc import Iterable

from ..db import Method
from .context import Context
from .engine import Answer, Rcode, bounded

log = logging.getLogger(__name__)

RANDOM_LABELS = 3
EXISTS = (Rcode.NOERROR, Rcode.NODATA)
Signature = frozenset[tuple[str, str]]


def random_label() -> str:
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(16))


def signature(answers: Iterable[Answer]) -> Signature:
    """What a set of answers says, independent of the name asked (CNAME targets included)."""
    found = set()
    for answer in answers:
        for rrset in answer.rrsets():
            for rdata in rrset:
                found.add((rrset.rdtype.name, rdata.to_text().lower()))
    return frozenset(found)


async def _ask_both(ctx: Context, name: str) -> list[Answer]:
    server = ctx.resolver_for(name)
    return [await ctx.engine.query(server, name, rdtype) for rdtype in ("A", "AAAA")]


async def detect_wildcard(ctx: Context, zone: str) -> Signature | None:
    """The wildcard answer set of ``zone``, or None if random labels do not exist."""
    names = [f"{random_label()}.{zone}" for _ in range(RANDOM_LABELS)]
    answers: list[Answer] = []
    async for _, pair in bounded(names, lambda n: _ask_both(ctx, n), ctx.workers):
        answers.extend(pair)
    hits = [a for a in answers if a.rcode in EXISTS]
    sig = signature(hits) if hits else None
    known = ctx.db["zones"].count_where("run_id = ? AND zone = ?", [ctx.run_id, zone])
    if sig is None and not known:
        return None
    with ctx.db.atomic():
        ctx.db["zones"].upsert(
            {
                "run_id": ctx.run_id, "zone": zone, "wildcard": int(sig is not None),
                "wildcard_answers": json.dumps(sorted(sig)) if sig is not None else None,
            },
            pk=("run_id", "zone"),
        )
    if sig is not None:
        log.info("%s has a wildcard: %s", zone, sorted(sig))
    return sig


def zones_to_check(ctx: Context) -> list[str]:
    """Every suffix of the profile and every zone found this run."""
    found = {row[0] for row in ctx.db.execute(
        "SELECT zone FROM zones WHERE run_id = ?", [ctx.run_id])}
    return sorted(found | ctx.suffixes.suffixes)


async def wordlist_sweep(ctx: Context, labels: list[str]) -> int:
    """Probe ``label.suffix`` for every label and suffix; return the domains found."""
    wildcards: dict[str, Signature | None] = {}
    for zone in zones_to_check(ctx):
        wildcards[zone] = await detect_wildcard(ctx, zone)
    suffixes = sorted(ctx.suffixes.suffixes)
    jobs = [f"{label}.{suffix}" for suffix in suffixes for label in labels]
    found = 0

    async def ask(name: str) -> list[Answer]:
        # the sweep fast path: most names do not exist, and their NXDOMAIN needs no parsing
        answer = await ctx.engine.sweep(ctx.resolver_for(name), name, "A")
        if answer.rcode not in EXISTS or wildcards.get(name.split(".", 1)[1]) is None:
            return [answer]
        return [answer, await ctx.engine.sweep(ctx.resolver_for(name), name, "AAAA")]

    done = 0
    with ctx.db.atomic(), ctx.engine.sweeping():
        async for name, answers in bounded(jobs, ask, ctx.workers):
            done += 1
            if answers[0].rcode in EXISTS:
                wildcard = wildcards.get(name.split(".", 1)[1])
                if wildcard is None or signature(answers) != wildcard:
                    ctx.see(name, Method.WORDLIST, f"{answers[0].server[0]}")
                    found += 1
            if done % 100 == 0 or done == len(jobs):
                ctx.tick("wordlist", done, len(jobs))
    return found
