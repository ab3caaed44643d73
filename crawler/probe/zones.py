"""Nameservers and zone transfers of the zone and, recursively, of every delegation it reveals.

For each zone: the NS set from the parent (the resolver for the top zone, the parent's
transferred records and glue for the others) and from the zone's own servers; every NS name
resolved to A and AAAA, each in its own error scope; then AXFR to every address of every NS.
The first successful transfer of a zone is stored; its owner names become sightings, and its
delegations (sub-zones such as ``com.kp`` and registrant zones such as ``airkoryo.com.kp``) are
queued for the same treatment, sub-zones first, up to ``ProbeOptions.max_zones``.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import dns.name
import dns.rdatatype

from ..db import Method, see_bulk, see_split, shallow_split, utcnow
from ..errors import TransferError
from ..names import normalize_name
from .axfr import drain, store_spool
from .context import Context
from .engine import Answer, Rcode, bounded
from .options import Outcome
from .tsig import TsigKey, Verifier

log = logging.getLogger(__name__)


@dataclass
class Delegation:
    zone: str
    parent: str | None
    ns_names: set[str] = field(default_factory=set)
    glue: dict[str, set[str]] = field(default_factory=dict)
    from_profile: bool = False
    """A suffix of the profile no transfer revealed: probed only if it has nameservers."""


@dataclass
class ZoneState:
    """What the probe learned of one zone, for its ``zones`` row."""

    zone: str
    parent: str | None
    serial: int | None = None
    mname: str | None = None
    rname: str | None = None
    stored_from: str | None = None
    """The ``dns_records.source`` of the stored transfer, if one succeeded."""
    addresses: dict[str, set[str]] = field(default_factory=dict)
    owners: list[str] = field(default_factory=list)
    """Owner names two or more labels under the zone of the stored transfer, each once, none
    below a delegation point (the shallow ones are seen while the transfer is stored)."""


def _names(answer: Answer, rdtype: str) -> set[str]:
    found = set()
    for value in answer.values(rdtype):
        clean = normalize_name(value)
        if clean:
            found.add(clean)
    return found


async def resolve_host(ctx: Context, name: str) -> set[str]:
    """A and AAAA of ``name``, each asked on its own: a failed AAAA keeps the A."""
    addresses: set[str] = set()
    for rdtype in ("A", "AAAA"):
        answer = await ctx.engine.query(ctx.resolver_for(name), name, rdtype)
        addresses.update(answer.values(rdtype))
    return addresses


def _insert_nameserver(ctx: Context, zone: str, ns: str, address: str | None, source: str) -> None:
    ctx.db.execute(
        "INSERT INTO nameservers (run_id, zone, ns_name, address, source) "
        "SELECT ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM nameservers WHERE run_id = ? "
        "AND zone = ? AND ns_name = ? AND address IS ? AND source = ?)",
        [ctx.run_id, zone, ns, address, source, ctx.run_id, zone, ns, address, source],
    )


@dataclass
class Referral:
    """What the parent's own servers say of a name: its NS set and the glue they give."""

    ns_names: set[str] = field(default_factory=set)
    glue: dict[str, set[str]] = field(default_factory=dict)
    server: str | None = None
    """The parent server that answered; None if none did."""


def zone_addresses(ctx: Context, zone: str) -> list[str]:
    """The addresses of ``zone``'s own servers this run found and may contact."""
    rows = ctx.db.execute(
        "SELECT DISTINCT address FROM nameservers WHERE run_id = ? AND zone = ? "
        "AND address IS NOT NULL ORDER BY address",
        [ctx.run_id, zone],
    )
    return [a for (a,) in rows if ctx.policy.allowed(a)]


async def parent_referral(ctx: Context, parent: str, name: str) -> Referral:
    """Ask the parent zone's servers, not the resolver, for ``name``'s NS set and glue.

    The referral is the parent's word: it names servers a resolver may never show (stale
    glue, a lame delegation the resolver answers SERVFAIL for).  The first parent server that
    answers is taken; one that serves the child too answers with the child's NS set.
    """
    qname = dns.name.from_text(name)
    for address in zone_addresses(ctx, parent):
        answer = await ctx.engine.query(ctx.authority(address), qname, "NS", recurse=False)
        response = answer.response
        if response is None or answer.rcode in (Rcode.REFUSED, Rcode.SERVFAIL, Rcode.ERROR):
            continue
        referral = Referral(server=address)
        for rrset in response.answer + response.authority:
            if rrset.rdtype == dns.rdatatype.NS and rrset.name == qname:
                referral.ns_names |= {n for rd in rrset if (n := normalize_name(rd.to_text()))}
        for rrset in response.additional:
            host = normalize_name(rrset.name.to_text())
            if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA) and host in referral.ns_names:
                referral.glue.setdefault(host, set()).update(rd.to_text() for rd in rrset)
        return referral
    return Referral()


async def nameservers(ctx: Context, d: Delegation, state: ZoneState) -> None:
    """Fill ``state.addresses`` (NS name -> addresses) and write the ``nameservers`` rows.

    Side by side, each with its ``source``: the parent's NS names (``parent``, at every
    address known for them) and its glue (``glue``), then the child's own NS set at the
    addresses the resolver gives (``child``).  Transfers are tried on the union.
    """
    parent_names = set(d.ns_names)
    glue = {ns: set(addrs) for ns, addrs in d.glue.items()}
    if not parent_names and d.parent is not None:
        referral = await parent_referral(ctx, d.parent, d.zone)
        parent_names |= referral.ns_names
        for ns, addrs in referral.glue.items():
            glue.setdefault(ns, set()).update(addrs)
    if not parent_names:
        answer = await ctx.engine.query(ctx.resolver_for(d.zone), d.zone, "NS")
        parent_names |= _names(answer, "NS")
    addresses: dict[str, set[str]] = {}
    resolved: dict[str, set[str]] = {}
    for ns in sorted(parent_names):
        resolved[ns] = await resolve_host(ctx, ns)
        addresses[ns] = glue.get(ns, set()) | resolved[ns]
    child_names: set[str] = set()
    for addrs in list(addresses.values()):
        for address in sorted(addrs):
            if not ctx.policy.allowed(address):
                continue
            answer = await ctx.engine.query(ctx.authority(address), d.zone, "NS", recurse=False)
            child_names |= _names(answer, "NS")
            if state.serial is None:
                _take_soa(
                    state,
                    await ctx.engine.query(ctx.authority(address), d.zone, "SOA", recurse=False),
                )
    for ns in sorted(child_names - addresses.keys()):
        addresses[ns] = resolved[ns] = await resolve_host(ctx, ns)
    if state.serial is None:
        _take_soa(state, await ctx.engine.query(ctx.resolver_for(d.zone), d.zone, "SOA"))
    with ctx.db.atomic():
        for ns in sorted(parent_names):
            for address in sorted(addresses[ns]) or [None]:
                _insert_nameserver(ctx, d.zone, ns, address, "parent")
            for address in sorted(glue.get(ns, ())):
                _insert_nameserver(ctx, d.zone, ns, address, "glue")
        for ns in sorted(child_names):
            for address in sorted(resolved[ns]) or [None]:
                _insert_nameserver(ctx, d.zone, ns, address, "child")
    state.addresses = addresses
    if not addresses and not d.from_profile:
        ctx.notes.append(f"no nameservers found for {d.zone}")


def _take_soa(state: ZoneState, answer: Answer) -> None:
    for rrset in answer.rrsets("SOA"):
        for rdata in rrset:
            state.serial = rdata.serial
            state.mname = rdata.mname.to_text(omit_final_dot=True)
            state.rname = rdata.rname.to_text(omit_final_dot=True)
            return


async def transfer(ctx: Context, state: ZoneState, ns: str, address: str) -> Outcome:
    """One AXFR attempt, recorded in ``axfr_attempts``; stores the zone if first to succeed."""
    polite = ctx.profile.politeness
    row: dict[str, object] = {
        "run_id": ctx.run_id,
        "zone": state.zone,
        "ns_name": ns,
        "address": address,
        "records": None,
        "soa_serial": None,
        "error": None,
        "attempted_at": utcnow(),
    }
    started = time.monotonic()
    if not ctx.policy.allowed(address):
        row.update(outcome=Outcome.ERROR, error="skipped: " + ctx.policy.why_not(address))
        ctx.db["axfr_attempts"].insert(row)
        return Outcome.ERROR
    source = f"axfr:{state.zone}@{address}"
    key = tsig_key(ctx, state.zone)
    with tempfile.TemporaryFile(prefix="census-axfr-") as spool:
        drained = await drain(
            address,
            ctx.options.ns_port,
            state.zone,
            spool,
            timeout=ctx.engine.limits.timeout,
            total=polite.axfr_timeout,
            tsig=key,
        )
        outcome = drained.outcome
        error = drained.error
        if key is not None and error and error.startswith("the server rejected TSIG"):
            ctx.notes.append(f"AXFR of {state.zone} from {address}: {error}")
        if outcome is None:
            store = state.stored_from is None
            verifier = None if key is None else Verifier(key, drained.request_mac, state.zone)

            top, suffixes = ctx.profile.zone, ctx.suffixes.suffixes
            split = None
            if state.zone == top:  # the parser works out the domains of its shallow names
                split = functools.partial(shallow_split, top, suffixes)

            def sight(found: list[Any]) -> None:
                if split is not None:
                    see_split(ctx.db, ctx.run_id, found, Method.AXFR, address)
                else:
                    see_bulk(ctx.db, ctx.run_id, top, suffixes, found, Method.AXFR, address,
                             count=False)

            try:
                parser = store_spool(
                    ctx.db, ctx.run_id, state.zone, spool, source, store=store,
                    verifier=verifier, sight=sight, split=split,
                )
            except TransferError as exc:
                outcome, error = Outcome.ERROR, str(exc)
            else:
                outcome, error = Outcome.SUCCESS, None
                row.update(records=parser.records, soa_serial=parser.serial)
                state.serial, state.mname, state.rname = parser.serial, parser.mname, parser.rname
                if store:
                    state.stored_from = source
                    state.owners = parser.deep_names()
    row.update(outcome=outcome, error=error, seconds=round(time.monotonic() - started, 3))
    with ctx.db.atomic():
        ctx.db["axfr_attempts"].insert(row)
    log.info("AXFR %s from %s (%s): %s %s", state.zone, ns, address, outcome, error or "")
    return outcome


def tsig_key(ctx: Context, zone: str) -> TsigKey | None:
    """The key that signs transfers of the run's zone itself (``--tsig``, else the profile's).

    Published keys are per zone: sub-zones and delegated domains are asked unsigned.
    """
    if zone != ctx.profile.zone:
        return None
    spec = ctx.options.tsig or ctx.profile.transfer.tsig
    return TsigKey.parse(spec) if spec else None


async def transfer_servers(ctx: Context, state: ZoneState) -> None:
    """AXFR from the servers where the profile says the registry publishes the zone."""
    for server in ctx.profile.transfer.servers:
        try:
            addresses = {str(ipaddress.ip_address(server))}
        except ValueError:
            addresses = await resolve_host(ctx, server)
        if not addresses:
            ctx.notes.append(f"transfer server {server} of the profile has no address")
        for address in sorted(addresses):
            await transfer(ctx, state, server, address)


def index_transfer(ctx: Context, state: ZoneState, room: int) -> list[Delegation]:
    """Sightings for the deep owner names of the stored transfer; its delegations (at most
    ``room``).

    Names below a delegation point are glue, left out by the parser
    (:meth:`.AxfrParser.deep_names`); names one label under the zone cannot be below one, and
    were seen while the transfer was stored.  The sightings are written set-based
    (``see_bulk``).
    """
    db, source = ctx.db, state.stored_from
    assert source is not None
    server = source.split("@", 1)[1]
    with db.atomic():
        see_bulk(db, ctx.run_id, ctx.profile.zone, ctx.suffixes.suffixes, state.owners,
                 Method.AXFR, server, count=False)
    found: dict[str, Delegation] = {}
    rows = db.conn.execute(
        "SELECT name, value FROM dns_records WHERE run_id = ? AND source = ? AND type = 'NS' "
        "AND name != ? ORDER BY name",
        [ctx.run_id, source, state.zone],
    )
    for name, value in rows:
        if name not in found:
            if len(found) >= room:
                ctx.notes.append(f"more delegations in {state.zone} than --max-zones allows")
                break
            found[name] = Delegation(name, state.zone)
        target = normalize_name(value)
        if target:
            found[name].ns_names.add(target)
    for d in found.values():
        for ns in d.ns_names:
            glue = db.conn.execute(
                "SELECT value FROM dns_records WHERE run_id = ? AND source = ? AND name = ? "
                "AND type IN ('A', 'AAAA')",
                [ctx.run_id, source, ns],
            )
            d.glue[ns] = {value for (value,) in glue}
    return list(found.values())


def write_zone(ctx: Context, state: ZoneState) -> None:
    with ctx.db.atomic():
        ctx.db["zones"].upsert(
            {
                "run_id": ctx.run_id,
                "zone": state.zone,
                "parent": state.parent,
                "soa_serial": state.serial,
                "soa_mname": state.mname,
                "soa_rname": state.rname,
            },
            pk=("run_id", "zone"),
        )


async def delegated_domains(
    ctx: Context, domains: list[str], zones: list[ZoneState]
) -> list[Delegation]:
    """The domains among ``domains`` that are zones of their own (an NS set at the name).

    A closed transfer of the parent hides its delegations; a domain found another way (seed,
    wordlist, walk, PTR, link) is asked of the parent's own servers (when the parent's
    transfer did not already say) and of the resolver.  The parent's referral counts even
    when the resolver fails (a lame delegation), and its glue goes with it.
    """
    known = {z.zone: z for z in zones}

    async def ask(domain: str) -> Delegation | None:
        parent = _enclosing(domain, known)
        referral = Referral()
        if parent is not None and known[parent].stored_from is None:
            referral = await parent_referral(ctx, parent, domain)
        answer = await ctx.engine.query(ctx.resolver_for(domain), domain, "NS")
        owners = {r.name.to_text(omit_final_dot=True).lower() for r in answer.rrsets("NS")}
        names = referral.ns_names or (_names(answer, "NS") if domain in owners else set())
        if not names:
            return None
        return Delegation(domain, parent or ctx.suffixes.suffix_of(domain), names,
                          referral.glue)

    found = []
    async for _, delegation in bounded(domains, ask, ctx.workers):
        if delegation is not None:
            found.append(delegation)
    return sorted(found, key=lambda d: d.zone)


def _enclosing(name: str, zones: dict[str, ZoneState]) -> str | None:
    """The deepest zone of ``zones`` strictly above ``name``."""
    labels = name.split(".")
    for i in range(1, len(labels)):
        candidate = ".".join(labels[i:])
        if candidate in zones:
            return candidate
    return None


async def enumerate_zones(
    ctx: Context,
    start: list[Delegation] | None = None,
    scheduled: set[str] | None = None,
) -> list[ZoneState]:
    """NS discovery and AXFR, the zone first, then its sub-zones, then delegated domains.

    ``start`` replaces the zone itself as the first work (e.g. domains found delegated after
    the transfers); ``scheduled`` holds the zones already done, which are not done again.
    """
    top = ctx.profile.zone
    first = start if start is not None else [Delegation(top, None)]
    scheduled = set() if scheduled is None else scheduled
    scheduled |= {d.zone for d in first}
    is_domain = [bool(ctx.suffixes.split(d.zone)) for d in first]
    suffix_queue: deque[Delegation] = deque(
        d for d, dom in zip(first, is_domain, strict=True) if not dom
    )
    domain_queue: deque[Delegation] = deque(
        d for d, dom in zip(first, is_domain, strict=True) if dom
    )
    states: list[ZoneState] = []
    while suffix_queue or domain_queue:
        d = suffix_queue.popleft() if suffix_queue else domain_queue.popleft()
        state = ZoneState(d.zone, d.parent)
        ctx.tick("zones", len(states), len(scheduled))
        await nameservers(ctx, d, state)
        if d.from_profile and not state.addresses:
            continue
        if d.zone == top and d.parent is None:
            await transfer_servers(ctx, state)
        for ns, addrs in sorted(state.addresses.items()):
            for address in sorted(addrs):
                await transfer(ctx, state, ns, address)
        write_zone(ctx, state)
        states.append(state)
        if state.stored_from is not None:
            room = max(0, ctx.options.max_zones - len(scheduled))
            for sub in index_transfer(ctx, state, room):
                if sub.zone in scheduled:
                    continue
                scheduled.add(sub.zone)
                split = ctx.suffixes.split(sub.zone)
                (domain_queue if split and split[0] == sub.zone else suffix_queue).append(sub)
        if d.parent is None:
            # suffixes the zone's transfer did not reveal (refused, or not delegated there)
            for suffix in sorted(ctx.suffixes.suffixes - scheduled):
                scheduled.add(suffix)
                suffix_queue.append(Delegation(suffix, top, from_profile=True))
    ctx.tick("zones", len(states), len(scheduled))
    return states
