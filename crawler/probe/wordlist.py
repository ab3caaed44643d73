"""Wordlist probing under each suffix, with wildcard detection per zone.

A zone has a wildcard when random labels (several, 16 random characters each) answer; their
A/AAAA answer set is the wildcard's.  A wordlist name whose answer set equals it exists only
through the wildcard and is not a domain; the zone's ``wildcard`` column says so.

The labels come from a secret drawn once per run (kept in the phase's checkpoint) and the
zone: nobody outside can guess them, and every attempt of the run asks the same ones, so a
phase redone after a kill is answered from the kept answers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import string
from collections.abc import Iterable
from typing import Any

from ..db import Method
from .checkpoint import Checkpoint
from .context import Context
from .engine import Answer, Rcode, bounded
from .replies import Reply

log = logging.getLogger(__name__)

RANDOM_LABELS = 3
EXISTS = (Rcode.NOERROR, Rcode.NODATA)
Signature = frozenset[tuple[str, str]]


def random_labels(secret: str, zone: str) -> list[str]:
    """``RANDOM_LABELS`` labels of 16 characters, unguessable without ``secret`` (hex)."""
    alphabet = string.ascii_lowercase + string.digits
    return ["".join(alphabet[b % len(alphabet)] for b in hmac.digest(
                bytes.fromhex(secret), f"{zone}:{i}".encode(), hashlib.sha256)[:16])
            for i in range(RANDOM_LABELS)]


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


async def detect_wildcard(ctx: Context, zone: str, secret: str | None = None) -> Signature | None:
    """The wildcard answer set of ``zone``, or None if random labels do not exist.

    ``secret`` (hex) makes the labels; None draws a new one.
    """
    names = [f"{label}.{zone}" for label in random_labels(secret or secrets.token_hex(16), zone)]
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
    """Probe ``label.suffix`` for every label and suffix; return the domains found.

    One :class:`.flight.Flight` asks A of every name (most are NXDOMAIN, read from the header
    alone); in zones with a wildcard, a second flight asks AAAA of the names that answered,
    so their A and AAAA answers can be compared with the wildcard's.  Both store with the
    phase's checkpoint (:mod:`.checkpoint`), which also carries the wildcards and the names
    in doubt, so a resumed sweep asks only what it had not settled.
    """
    checkpoint = Checkpoint(ctx, "wordlist")
    extra = checkpoint.extra
    if "wildcards" not in extra:
        if "secret" not in extra:  # stored before its labels are asked: a redo asks the same
            extra["secret"] = secrets.token_hex(16)
            checkpoint.start("A")
            checkpoint.save(lambda replies: None)
        wildcards: dict[str, Signature | None] = {}
        for zone in zones_to_check(ctx):
            wildcards[zone] = await detect_wildcard(ctx, zone, extra["secret"])
        extra["wildcards"] = {z: None if sig is None else sorted(sig)
                              for z, sig in wildcards.items()}
        extra["doubtful"] = {}
        checkpoint.start("A")
        checkpoint.save(lambda replies: None)  # a resumed sweep asks no random label again
    wildcards = {z: None if sig is None else frozenset(map(tuple, sig))
                 for z, sig in extra["wildcards"].items()}
    doubtful: dict[str, list[Any]] = extra["doubtful"]
    """Names that answered in a wildcard zone: ``[server, [[type, value], ...]]``."""
    suffixes = sorted(ctx.suffixes.suffixes)
    total = len(suffixes) * len(labels)
    found = 0

    def see(by_source: dict[str, list[str]]) -> None:
        nonlocal found
        for source, names in by_source.items():
            ctx.see_many(names, Method.WORDLIST, source)
            found += len(names)

    def store_a(replies: list[Reply]) -> None:
        by_source: dict[str, list[str]] = {}
        for reply in replies:
            if reply.rcode in EXISTS:
                if wildcards.get(reply.qname.split(".", 1)[1]) is None:
                    by_source.setdefault(reply.server[0], []).append(reply.qname)
                else:
                    doubtful[reply.qname] = [reply.server[0], sorted(signature_of([reply]))]
        see(by_source)

    questions = checkpoint.questions(
        ((ctx.resolver_for(name), name, "A")
         for suffix in suffixes for label in labels for name in (f"{label}.{suffix}",)), "A")
    def tick(done: int, batch: int) -> None:
        if done // 1000 != (done - batch) // 1000 or done == total:
            ctx.tick("wordlist", done, total)

    await checkpoint.fly(questions, store_a, tick)

    def store_aaaa(replies: list[Reply]) -> None:
        by_source: dict[str, list[str]] = {}
        for reply in replies:
            source, answers = doubtful[reply.qname]
            first = frozenset(map(tuple, answers))
            if first | signature_of([reply]) != wildcards[reply.qname.split(".", 1)[1]]:
                by_source.setdefault(source, []).append(reply.qname)
        see(by_source)

    questions = checkpoint.questions(
        ((ctx.resolver_for(name), name, "AAAA") for name in sorted(doubtful)), "AAAA")
    await checkpoint.fly(questions, store_aaaa)
    return found


def signature_of(replies: Iterable[Reply]) -> Signature:
    """:func:`signature` of fast-path replies."""
    return frozenset((rdtype, value.lower()) for reply in replies
                     for _, rdtype, _, value in reply.records)
