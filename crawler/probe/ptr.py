"""PTR sweep: every address of the national ranges, through the resolver.

Names under the zone that only a reverse zone reveals become sightings (method ``ptr``, source
the address); the PTR records themselves go to ``dns_records``.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterator

from ..db import Method
from ..netpolicy import parse_networks
from .context import Context
from .engine import Answer, bounded
from .records import store_answer

log = logging.getLogger(__name__)

MAX_ADDRESSES = 1 << 16
"""A /16 at most per run: a PTR sweep is a polite census, not a scan of the Internet."""


def addresses(ranges: tuple[str, ...]) -> Iterator[str]:
    for network in parse_networks(ranges):
        for address in network:
            yield str(address)


async def ptr_sweep(ctx: Context, ranges: tuple[str, ...]) -> int:
    """Ask PTR for every address of ``ranges``; return the names under the zone found."""
    total = sum(net.num_addresses for net in parse_networks(ranges))
    if total > MAX_ADDRESSES:
        ctx.notes.append(f"PTR sweep skipped: {total} addresses is more than {MAX_ADDRESSES}")
        return 0
    found = 0

    async def ask(address: str) -> Answer:
        name = ipaddress.ip_address(address).reverse_pointer
        return await ctx.engine.sweep(ctx.resolver_for(name), name, "PTR")

    done = 0
    with ctx.db.atomic(), ctx.engine.sweeping():
        async for address, answer in bounded(addresses(ranges), ask, ctx.workers):
            done += 1
            store_answer(ctx, answer)
            for target in answer.values("PTR"):
                ctx.see(target, Method.PTR, address)
                found += int(ctx.suffixes.in_zone(target.rstrip(".").lower()))
            if done % 64 == 0 or done == total:
                ctx.tick("ptr", done, total)
    return found
