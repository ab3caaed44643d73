"""Per-name records: what each registrable domain and its ``www.`` / ``mail.`` hosts answer."""

from __future__ import annotations

import logging

import dns.rdatatype

from ..db import run_domains
from ..profiles import RECORD_HOSTS, RECORD_TYPES
from .context import Context
from .engine import Answer

log = logging.getLogger(__name__)

TYPES = RECORD_TYPES
HOSTS = RECORD_HOSTS


Row = tuple[int, str, str, int, str, str]
BATCH = 10_000


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
    no task per query); rows are written ``BATCH`` at a time.  Returns the records stored.
    """
    if domains is None:
        domains = run_domains(ctx.db, ctx.run_id)
    types, hosts = ctx.profile.records.types, ctx.profile.records.hosts
    total = len(domains) * len(hosts) * len(types)
    questions = (
        (ctx.resolver_for(name), name, rdtype)
        for domain in domains for host in hosts
        for name in (host + domain,) for rdtype in types
    )
    run_id = ctx.run_id
    stored = done = 0
    rows: list[Row] = []
    with ctx.db.atomic():
        async with ctx.engine.flight(questions) as flight:
            async for replies in flight:
                for reply in replies:
                    if reply.records:
                        source = reply.server[0]
                        rows += [(run_id, *record, source) for record in reply.records]
                done += len(replies)
                if len(rows) >= BATCH:
                    write_rows(ctx, rows)
                    stored += len(rows)
                    rows = []
                if done // 1000 != (done - len(replies)) // 1000:
                    ctx.tick("records", done, total)
        write_rows(ctx, rows)
        stored += len(rows)
    ctx.tick("records", total, total)
    return stored
