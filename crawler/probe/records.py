"""Per-name records: what each registrable domain and its ``www.`` / ``mail.`` hosts answer."""

from __future__ import annotations

import logging

import dns.rdatatype

from ..db import run_domains
from .context import Context
from .engine import Answer, bounded

log = logging.getLogger(__name__)

TYPES = ("A", "AAAA", "NS", "MX", "TXT", "SOA", "CNAME", "CAA")
HOSTS = ("", "www.", "mail.")


Row = tuple[int, str, str, int, str, str]
BATCH = 5000


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

    Returns the number of records stored.
    """
    if domains is None:
        domains = run_domains(ctx.db, ctx.run_id)
    jobs = [(host + domain, rdtype) for domain in domains for host in HOSTS for rdtype in TYPES]
    stored = 0

    async def ask(job: tuple[str, str]) -> Answer:
        name, rdtype = job
        # the wordlist's fast path: most of these answers are empty (no AAAA, no CAA, no
        # www.), read from the header; only answers with records meet dnspython
        return await ctx.engine.sweep(ctx.resolver_for(name), name, rdtype)

    done = 0
    rows: list[Row] = []
    with ctx.db.atomic(), ctx.engine.sweeping():
        async for _, answer in bounded(jobs, ask, ctx.workers):
            rows += answer_rows(ctx.run_id, answer)
            done += 1
            if len(rows) >= BATCH:
                write_rows(ctx, rows)
                stored += len(rows)
                rows.clear()
            if done % 100 == 0:
                ctx.tick("records", done, len(jobs))
        write_rows(ctx, rows)
        stored += len(rows)
    ctx.tick("records", len(jobs), len(jobs))
    return stored
