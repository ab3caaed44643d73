"""Seed names: names known before the probe (the profile's, or found in crawled links).

A seed is a sighting only if the name still exists: a 2016 name that now answers NXDOMAIN is
not seen in this run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from .context import Context
from .engine import Answer, Rcode, bounded

log = logging.getLogger(__name__)

EXISTS = (Rcode.NOERROR, Rcode.NODATA)


async def probe_seeds(ctx: Context, seeds: Iterable[tuple[str, str, str]]) -> int:
    """Check each ``(name, method, source)``; see the names that exist; return how many."""
    jobs = list(seeds)
    found = 0

    async def ask(job: tuple[str, str, str]) -> Answer:
        return await ctx.engine.query(ctx.resolver_for(job[0]), job[0], "A")

    done = 0
    seen: list[tuple[str, str, str]] = []
    async for job, answer in bounded(jobs, ask, ctx.workers):
        done += 1
        if answer.rcode in EXISTS:
            seen.append(job)
            found += 1
        ctx.tick("seeds", done, len(jobs))
    # written at the end, in one transaction that is never open across a question (the
    # answers are kept in their own, :mod:`.answers`); a cut phase is undone anyway
    with ctx.db.atomic():
        for name, method, source in seen:
            ctx.see(name, method, source)
    return found
