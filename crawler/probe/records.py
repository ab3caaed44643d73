"""Per-name records: what each registrable domain and its ``www.`` / ``mail.`` hosts answer."""

from __future__ import annotations

import logging

import dns.rdatatype

from ..db import run_domains
from ..profiles import RECORD_HOSTS, RECORD_TYPES
from .checkpoint import Checkpoint
from .context import Context
from .engine import Answer
from .replies import Reply

log = logging.getLogger(__name__)

TYPES = RECORD_TYPES
HOSTS = RECORD_HOSTS


Row = tuple[int, str, str, int, str, str]


def answer_rows(run_id: int, answer: Answer) -> list[Row]:
    """The ``dns_records`` rows of every RR of an answer, with the server that gave it."""
    return [
        (run_id, rrset.name.to_text(omit_final_dot=True).lower(),
         dns.rdatatype.to_text(rrset.rdtype), rrset.ttl,
         rdata.to_text(), answer.server[0])
        for rrset in answer.rrsets()
        for rdata in rrset
    ]


def write_rows(ctx: Context, rows: list[Row]) -> None:
    if rows:
        ctx.db.conn.executemany(
            "INSERT INTO dns_records (run_id, name, type, ttl, value, source) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )


def store_answer(ctx: Context, answer: Answer) -> int:
    """Write every RR of an answer to ``dns_records`` with the server that gave it."""
    rows = answer_rows(ctx.run_id, answer)
    write_rows(ctx, rows)
    return len(rows)


async def collect_records(ctx: Context, domains: list[str] | None = None) -> int:
    """Ask the resolver for every type of every domain (default: the run's) and its hosts.

    The types and hosts are the profile's (``[records]``; by default ``TYPES`` at ``HOSTS``).

    All questions go through one :class:`.flight.Flight` (hundreds in flight per resolver,
    no task per query); rows are written with the phase's checkpoint
    (:mod:`.checkpoint`), so a resumed record phase asks only what it had not settled.
    Returns the records stored.
    """
    checkpoint = Checkpoint(ctx, "records" if domains is None else None)
    if domains is None:
        domains = run_domains(ctx.db, ctx.run_id)
    types, hosts = ctx.profile.records.types, ctx.profile.records.hosts
    total = len(domains) * len(hosts) * len(types)
    questions = checkpoint.questions(
        (ctx.resolver_for(name), name, rdtype)
        for domain in domains for host in hosts
        for name in (host + domain,) for rdtype in types
    )
    run_id = ctx.run_id
    stored = 0

    def store(replies: list[Reply]) -> None:
        nonlocal stored
        rows = [(run_id, *record, reply.server[0]) for reply in replies
                for record in reply.records]
        write_rows(ctx, rows)
        stored += len(rows)

    def tick(done: int, batch: int) -> None:
        if done // 1000 != (done - batch) // 1000:
            ctx.tick("records", done, total)

    await checkpoint.fly(questions, store, tick)
    ctx.tick("records", total, total)
    return stored
