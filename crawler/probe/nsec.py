"""DNSSEC denial records: walk a zone signed with NSEC; record what NSEC3 shows.

NSEC chains every owner name to the next, so asking each name's NSEC walks the whole zone
(delegations included: the parent answers their NSEC in the referral).  NSEC3 hashes the
names; the census keeps the parameters and the hashes seen, for offline cracking elsewhere.
"""

from __future__ import annotations

import logging

import dns.name
import dns.rdatatype

from ..db import Method
from .context import Context
from .engine import Answer, Rcode, Server
from .wordlist import random_label

log = logging.getLogger(__name__)

MAX_WALK = 100_000
NSEC3_SAMPLES = 8


def _servers(ctx: Context, zone: str) -> list[Server]:
    """The zone's own servers that may be contacted, then the resolvers."""
    rows = ctx.db.execute(
        "SELECT DISTINCT address FROM nameservers WHERE run_id = ? AND zone = ? "
        "AND address IS NOT NULL ORDER BY address",
        [ctx.run_id, zone],
    )
    own = [ctx.authority(a) for (a,) in rows if ctx.policy.allowed(a)]
    return own + ctx.resolvers


async def _first_answer(ctx: Context, servers: list[Server], name: str | dns.name.Name,
                        rdtype: str) -> Answer | None:
    for server in servers:
        answer = await ctx.engine.query(server, name, rdtype, dnssec=True, recurse=False)
        if answer.answered and answer.rcode not in (Rcode.REFUSED, Rcode.SERVFAIL):
            return answer
    return None


def _rrsets(answer: Answer, rdtype: int) -> list:
    if answer.response is None:
        return []
    return [r for r in answer.response.answer + answer.response.authority if r.rdtype == rdtype]


async def examine_zone(ctx: Context, zone: str) -> None:
    """Set ``signed`` / ``nsec`` / ``nsec3_params`` of the zone and walk or sample it."""
    servers = _servers(ctx, zone)
    dnskey = await _first_answer(ctx, servers, zone, "DNSKEY")
    signed = bool(dnskey and dnskey.rrsets("DNSKEY"))
    row: dict[str, object] = {"run_id": ctx.run_id, "zone": zone, "signed": int(signed)}
    if signed:
        param = await _first_answer(ctx, servers, zone, "NSEC3PARAM")
        values = param.values("NSEC3PARAM") if param else []
        if values:
            row.update(nsec="nsec3", nsec3_params=values[0])
            await sample_nsec3(ctx, zone, servers)
        else:
            row.update(nsec="nsec")
            await walk_nsec(ctx, zone, servers)
    with ctx.db.atomic():
        ctx.db["zones"].upsert(row, pk=("run_id", "zone"))


async def walk_nsec(ctx: Context, zone: str, servers: list[Server]) -> int:
    """Follow the NSEC chain from the apex back to it; every owner name is a sighting."""
    apex = dns.name.from_text(zone)
    current, seen = apex, {apex}
    while len(seen) < MAX_WALK:
        answer = await _first_answer(ctx, servers, current, "NSEC")
        nsec = [r for r in (_rrsets(answer, dns.rdatatype.NSEC) if answer else [])
                if r.name == current]
        if not nsec:
            log.info("NSEC walk of %s stopped at %s: no NSEC", zone, current)
            break
        following = nsec[0][0].next
        if following in seen or not following.is_subdomain(apex):
            break
        seen.add(following)
        with ctx.db.atomic():
            ctx.see(following.to_text(omit_final_dot=True), Method.NSEC,
                    answer.server[0] if answer else "")
        current = following
        ctx.tick("nsec", len(seen), None)
    return len(seen) - 1


async def sample_nsec3(ctx: Context, zone: str, servers: list[Server]) -> int:
    """Ask a few random names; keep the NSEC3 hashes the denials carry."""
    rows = {}
    for _ in range(NSEC3_SAMPLES):
        answer = await _first_answer(ctx, servers, f"{random_label()}.{zone}", "A")
        for rrset in _rrsets(answer, dns.rdatatype.NSEC3) if answer else []:
            for rdata in rrset:
                hashed = rrset.name.labels[0].decode().lower()
                # text form: algorithm flags iterations salt next-hash types...
                fields = rdata.to_text().split()
                rows[hashed] = {"run_id": ctx.run_id, "zone": zone, "hash": hashed,
                                "next_hash": fields[4].lower(), "types": " ".join(fields[5:])}
    with ctx.db.atomic():
        ctx.db["nsec3_hashes"].upsert_all(rows.values(), pk=("run_id", "zone", "hash"))
    return len(rows)

