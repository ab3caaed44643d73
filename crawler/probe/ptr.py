"""PTR sweep: every address of the national ranges, through the resolver.

Names under the zone that only a reverse zone reveals become sightings (method ``ptr``, source
the address); the PTR records themselves go to ``dns_records``, with the sweep's checkpoint
(a resumed sweep asks only the addresses it had not settled).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterator

import dns.name
import dns.reversename

from ..db import Method
from ..netpolicy import parse_networks
from .checkpoint import Checkpoint
from .context import Context
from .records import write_rows
from .replies import Reply

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
    checkpoint = Checkpoint(ctx, "ptr")
    questions = checkpoint.questions(
        (ctx.resolver_for(name), name, "PTR") for address in addresses(ranges)
        for name in (ipaddress.ip_address(address).reverse_pointer,))
    run_id = ctx.run_id
    found = 0

    def store(replies: list[Reply]) -> None:
        nonlocal found
        rows = []
        for reply in replies:
            rows += [(run_id, *record, reply.server[0]) for record in reply.records]
            for target in reply.values("PTR"):
                ctx.see(target, Method.PTR, address_of(reply.qname))
                found += int(ctx.suffixes.in_zone(target.rstrip(".").lower()))
        write_rows(ctx, rows)

    await checkpoint.fly(questions, store, lambda done, _: ctx.tick("ptr", done, total))
    return found


def address_of(reverse_name: str) -> str:
    """The address a name under in-addr.arpa or ip6.arpa stands for (the sighting's source)."""
    return str(dns.reversename.to_address(dns.name.from_text(reverse_name)))
