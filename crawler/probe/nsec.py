"""DNSSEC denial records: walk a zone's NSEC chain; collect and crack its NSEC3 chain.

NSEC chains every owner name to the next.  For each name the walk asks the first name after
it and all its descendants (its first label with a zero octet appended, ldns-walk's "next
name"): the answer is NXDOMAIN with the NSEC that covers it, owned by the name.  That crosses
secure delegations, where a question for the name itself gets only the parent's referral
(NS + DS, no NSEC).  The walk ends when the chain comes back to the apex, at a loop (a next
name that does not ascend), at made-up minimal spans (online signing), or at its budget;
the replies are read by :mod:`.denial`, which parses only their NSEC / NSEC3 records.

NSEC3 hashes the names.  Each denial carries NSEC3 records, each covering a span of the hash
ring; names whose hashes fall outside every span seen are asked until the ring closes (as
nsec3map does).  Every hash is stored with its span and opt-out flag; the wordlist and every
label seen elsewhere in the run are then hashed offline against them (:func:`crack_chains`).
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import logging
import random
import string
from collections import Counter
from dataclasses import dataclass, field

import dns.name
import dns.rdatatype

from ..db import Method
from .context import Context
from .denial import DenialAsker, DenialRecord
from .engine import Answer, Engine, Rcode, Server
from .zones import zone_addresses

log = logging.getLogger(__name__)

MAX_WALK = 100_000
"""Most names one NSEC walk follows, and most hashes one NSEC3 chain collects."""
QUERIES_PER_NAME = 3
"""Query budget of a walk or a collection: this many per name of ``MAX_WALK``."""
HASHES_PER_QUERY = 20_000_000
"""Most candidate names hashed to find one in a span not yet seen (≈ 30 s here).  The last
spans to find are the narrowest: closing a chain of n hashes takes about n² hashes in all,
so a big chain may stop with spans open, which the run's message says."""
STALLED_AFTER = 20
"""Answers in a row that bring no new NSEC3 record before the collection gives up."""
_BATCH = 1000


def _servers(ctx: Context, zone: str) -> list[Server]:
    """The zone's own servers that may be contacted, then the resolvers."""
    return [ctx.authority(a) for a in zone_addresses(ctx, zone)] + ctx.resolvers


async def _first_answer(ctx: Context, servers: list[Server], name: str | dns.name.Name,
                        rdtype: str) -> Answer | None:
    for server in servers:
        answer = await ctx.engine.query(server, name, rdtype, dnssec=True, recurse=False)
        if answer.answered and answer.rcode not in (Rcode.REFUSED, Rcode.SERVFAIL):
            return answer
    return None


def _sent(engine: Engine) -> int:
    return sum(state.queries for state in engine.servers.values())


async def examine_zone(ctx: Context, zone: str) -> None:
    """Set ``signed`` / ``nsec`` / ``nsec3_params`` of the zone and walk or collect it."""
    servers = _servers(ctx, zone)
    dnskey = await _first_answer(ctx, servers, zone, "DNSKEY")
    signed = bool(dnskey and dnskey.rrsets("DNSKEY"))
    row: dict[str, object] = {"run_id": ctx.run_id, "zone": zone, "signed": int(signed)}
    if signed:
        param = await _first_answer(ctx, servers, zone, "NSEC3PARAM")
        values = param.values("NSEC3PARAM") if param else []
        if values:
            row.update(nsec="nsec3", nsec3_params=values[0])
            chain = await collect_nsec3(ctx, zone, servers, Nsec3Params.from_text(values[0]))
            row.update(chain_closed=int(chain.closed), chain_length=len(chain.owners),
                       chain_queries=chain.queries, chain_unknown=len(chain.owners))
        else:
            row.update(nsec="nsec")
            walk = await walk_nsec(ctx, zone, servers)
            row.update(chain_closed=int(walk.closed), chain_length=walk.names + 1,
                       chain_queries=walk.queries)
    with ctx.db.atomic():
        ctx.db["zones"].upsert(row, pk=("run_id", "zone"))


# -- NSEC ------------------------------------------------------------------------------------


@dataclass
class Walk:
    """What one NSEC walk came to."""

    names: int = 0
    """Owner names found, the apex not counted."""
    queries: int = 0
    closed: bool = False
    """The chain came back to the apex: every name of the zone was seen."""


def next_name(name: dns.name.Name) -> dns.name.Name:
    """The first possible name after ``name`` and all its descendants, in canonical order:
    the first label with a zero octet appended (at 63 octets, its last octet raised)."""
    first, rest = name.labels[0], name.labels[1:]
    if len(first) < 63 and len(name.to_wire()) < 255:
        return dns.name.Name((first + b"\x00", *rest))
    stripped = first.rstrip(b"\xff") or b"\x00"
    return dns.name.Name((stripped[:-1] + bytes([stripped[-1] + 1]), *rest))


def _covers(owner: dns.name.Name, following: dns.name.Name, name: dns.name.Name) -> bool:
    """Whether the NSEC ``owner`` -> ``following`` denies ``name`` (the last one wraps)."""
    if owner < following:
        return owner < name < following
    return name > owner or name < following


async def _next_in_chain(
    asker: DenialAsker, servers: list[Server], current: dns.name.Name, apex: dns.name.Name
) -> tuple[dns.name.Name | None, str]:
    """The next name of the chain after ``current`` and the server that said so."""
    if current != apex:
        after = next_name(current)
        got = await asker.first(servers, after, "A")
        for owner, rdtype, rdata in got[1] if got else []:
            if rdtype == dns.rdatatype.NSEC and owner == current and _covers(
                    current, rdata.next, after):
                assert got is not None
                return rdata.next, got[0].server[0]
        # ``current`` has names below it (the denial came from one of them), or the server
        # gave no NSEC: ask for the name's own NSEC.
    got = await asker.first(servers, current, "NSEC")
    for owner, rdtype, rdata in got[1] if got else []:
        if rdtype == dns.rdatatype.NSEC and owner == current:
            assert got is not None
            return rdata.next, got[0].server[0]
    return None, ""


async def walk_nsec(ctx: Context, zone: str, servers: list[Server]) -> Walk:
    """Follow the NSEC chain from the apex back to it; every owner name is a sighting."""
    apex = dns.name.from_text(zone)
    start = _sent(ctx.engine)
    walk = Walk()
    current, seen = apex, {apex}
    found: list[tuple[str, str]] = []

    def flush() -> None:
        with ctx.db.atomic():
            for source in sorted({s for _, s in found}):
                ctx.see_many((n for n, s in found if s == source), Method.NSEC, source)
        found.clear()

    stop = f"NSEC walk of {zone} stopped at its budget ({MAX_WALK} names)"
    asker = DenialAsker(ctx.engine)
    try:
        while len(seen) < MAX_WALK and _sent(ctx.engine) - start < QUERIES_PER_NAME * MAX_WALK:
            following, server = await _next_in_chain(asker, servers, current, apex)
            if following is None:
                stop = f"NSEC walk of {zone} stopped at {current}: no NSEC"
                break
            if following == apex:
                walk.closed = True
                break
            if following in seen or not following.is_subdomain(apex) or not current < following:
                stop = f"NSEC walk of {zone} stopped at {current}: the chain loops to {following}"
                break
            if following.labels[0].endswith(b"\x00"):
                # RFC 4470 online signing: each denial is a made-up span around the name
                # asked, so "next names" would go on ascending forever and reveal nothing.
                stop = (f"NSEC walk of {zone} stopped at {current}: the server makes up "
                        f"minimal NSEC records (online signing), the chain cannot be walked")
                break
            seen.add(following)
            found.append((following.to_text(omit_final_dot=True), server))
            current = following
            if len(found) >= _BATCH:
                flush()
            ctx.tick("nsec", len(seen), None)
    finally:
        asker.close()
    flush()
    walk.names, walk.queries = len(seen) - 1, _sent(ctx.engine) - start
    if not walk.closed:
        ctx.notes.append(stop)
    log.info("NSEC walk of %s: %d names in %d queries, closed: %s",
             zone, walk.names, walk.queries, walk.closed)
    return walk


# -- NSEC3 -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Nsec3Params:
    """The hash of a zone's NSEC3 chain (RFC 5155 5): SHA-1, iterated, salted."""

    algorithm: int
    flags: int
    iterations: int
    salt: bytes

    @classmethod
    def from_text(cls, text: str) -> Nsec3Params:
        """From NSEC3PARAM presentation: ``1 0 10 abcd`` (``-`` for no salt)."""
        algorithm, flags, iterations, salt = text.split()[:4]
        return cls(int(algorithm), int(flags), int(iterations),
                   b"" if salt == "-" else bytes.fromhex(salt))

    def digest(self, wire: bytes) -> bytes:
        """The raw hash of a name in canonical wire form."""
        digest = hashlib.sha1(wire + self.salt).digest()
        for _ in range(self.iterations):
            digest = hashlib.sha1(digest + self.salt).digest()
        return digest

    def hash_name(self, name: str) -> str | None:
        """The base32hex hash (lower case, as owner labels are stored) of ``name``."""
        try:
            wire = dns.name.from_text(name).canonicalize().to_wire()
        except (dns.name.NameTooLong, dns.name.LabelTooLong, dns.name.EmptyLabel, ValueError):
            return None
        assert wire is not None
        return _text(self.digest(wire))


def _text(digest: bytes) -> str:
    return base64.b32hexencode(digest).decode().lower()


@dataclass
class Nsec3Chain:
    """The NSEC3 records seen of one zone, as spans of the hash ring.

    Hashes are kept raw: base32hex keeps their order, so the ring sorts the same either way.
    """

    spans: dict[bytes, tuple[bytes, int, str]] = field(default_factory=dict)
    """owner hash -> (next hash, flags, types)."""
    owners: list[bytes] = field(default_factory=list)
    """Owner hashes, sorted: the ring's order."""
    waiting: Counter[bytes] = field(default_factory=Counter)
    """Next hashes whose own record is not seen yet: each opens a span still to find."""
    queries: int = 0
    hashed: int = 0
    """Candidate names hashed to find names in open spans."""

    @property
    def closed(self) -> bool:
        """Every record's next hash is a record seen: the ring is whole."""
        return bool(self.owners) and not self.waiting

    def add(self, owner: bytes, following: bytes, flags: int, types: str) -> bool:
        if owner in self.spans:
            return False
        self.spans[owner] = (following, flags, types)
        bisect.insort(self.owners, owner)
        self.waiting.pop(owner, None)
        if following not in self.spans:
            self.waiting[following] += 1
        return True

    def covered(self, value: bytes) -> bool:
        """Whether a hash is a known owner or strictly inside a known span."""
        if not self.owners:
            return False
        owner = self.owners[bisect.bisect_right(self.owners, value) - 1]
        following = self.spans[owner][0]
        if owner < following:
            return owner <= value < following
        return value >= owner or value < following


def _absorb(chain: Nsec3Chain, records: list[DenialRecord], apex: dns.name.Name) -> int:
    new = 0
    for owner, rdtype, rdata in records:
        if rdtype != dns.rdatatype.NSEC3 or owner.parent() != apex:
            continue
        try:
            digest = base64.b32hexdecode(owner.labels[0].upper())
        except ValueError:
            continue
        # text form: algorithm flags iterations salt next-hash types...
        types = " ".join(rdata.to_text().split()[5:])
        new += chain.add(digest, rdata.next, rdata.flags, types)
    return new


@dataclass
class _Candidates:
    """Names one label under the apex that are unlikely to exist: a random prefix, a count."""

    apex_wire: bytes
    prefix: bytes = field(
        default_factory=lambda: "".join(random.choices(string.ascii_lowercase, k=3)).encode())
    count: int = 0

    def in_open_span(self, chain: Nsec3Chain, params: Nsec3Params) -> bytes | None:
        """The next label whose hash no span seen covers; None past ``HASHES_PER_QUERY``.

        The hot loop of the collection (the last spans to find are the narrowest, so
        closing a chain of n hashes costs about n² hashes): inlined, on raw digests.
        """
        sha1, salt = hashlib.sha1, params.salt
        head, tail = bytes((len(self.prefix) + 10,)) + self.prefix, self.apex_wire + salt
        owners, spans, right = chain.owners, chain.spans, bisect.bisect_right
        first = self.count
        for i in range(first, first + HASHES_PER_QUERY):
            digest = sha1(b"%s%010x%s" % (head, i, tail)).digest()
            for _ in range(params.iterations):
                digest = sha1(digest + salt).digest()
            if owners:
                owner = owners[right(owners, digest) - 1]
                following = spans[owner][0]
                if (owner <= digest < following) if owner < following else (
                        digest >= owner or digest < following):
                    continue
            self.count = i + 1
            chain.hashed += i + 1 - first
            return b"%s%010x" % (self.prefix, i)
        self.count = first + HASHES_PER_QUERY
        chain.hashed += HASHES_PER_QUERY
        return None


async def _collect(ctx: Context, asker: DenialAsker, servers: list[Server],
                   apex: dns.name.Name, chain: Nsec3Chain, params: Nsec3Params) -> str:
    """Fill ``chain`` until it closes; why it stopped short, or "" if it closed."""
    apex_wire = apex.canonicalize().to_wire()
    assert apex_wire is not None
    # the same names in every attempt of the run: a collection redone after a kill asks the
    # questions it asked before, which are answered from what was kept (:mod:`.answers`)
    seeded = random.Random(f"{ctx.run_id}:{apex}")
    names = _Candidates(apex_wire, "".join(seeded.choices(string.ascii_lowercase, k=3)).encode())
    start = _sent(ctx.engine)
    stalled = 0
    while not chain.closed:
        if len(chain.owners) >= MAX_WALK or _sent(ctx.engine) - start >= (
                QUERIES_PER_NAME * MAX_WALK):
            return "at its budget"
        label = names.in_open_span(chain, params)
        if label is None:
            return f"none of {HASHES_PER_QUERY} names hashed fell in an open span"
        got = await asker.first(servers, dns.name.Name((label, *apex.labels)), "A")
        if got is None:
            return "no server answered"
        if _absorb(chain, got[1], apex):
            stalled = 0
        else:
            stalled += 1
            if stalled >= STALLED_AFTER:
                return f"{STALLED_AFTER} answers in a row brought no new NSEC3"
        ctx.tick("nsec3", len(chain.owners), None)
    return ""


async def collect_nsec3(
    ctx: Context, zone: str, servers: list[Server], params: Nsec3Params
) -> Nsec3Chain:
    """Ask names whose hashes fall outside every span seen until the chain closes; store it."""
    apex = dns.name.from_text(zone)
    chain = Nsec3Chain()
    start = _sent(ctx.engine)
    asker = DenialAsker(ctx.engine)
    try:
        stop = await _collect(ctx, asker, servers, apex, chain, params)
    finally:
        asker.close()
    chain.queries = _sent(ctx.engine) - start
    if stop:
        ctx.notes.append(f"NSEC3 chain of {zone} not closed ({len(chain.owners)} hashes, "
                         f"{len(chain.waiting)} spans open): {stop}")
    rows = [
        {"run_id": ctx.run_id, "zone": zone, "hash": _text(owner), "next_hash": _text(following),
         "types": types, "opt_out": flags & 1}
        for owner, (following, flags, types) in chain.spans.items()
    ]
    with ctx.db.atomic():
        ctx.db["nsec3_hashes"].upsert_all(rows, pk=("run_id", "zone", "hash"))
    log.info("NSEC3 chain of %s: %d hashes in %d queries (%d names hashed), closed: %s",
             zone, len(chain.owners), chain.queries, chain.hashed, chain.closed)
    return chain


def _seen_labels(ctx: Context) -> tuple[set[str], set[str]]:
    """Every label of every name seen in the run, and the names themselves."""
    labels: set[str] = set()
    names: set[str] = set()
    for (name,) in ctx.db.execute(
        "SELECT DISTINCT name FROM sightings WHERE run_id = ?", [ctx.run_id]
    ):
        names.add(name)
        labels.update(name.split("."))
    return labels, names


def crack_chains(ctx: Context, wordlist: list[str]) -> None:
    """Name the NSEC3 hashes of the run that a wordlist label or a name seen hashes to.

    A hash in the chain is an owner name of the zone, so a name found here exists: it becomes
    a sighting (method ``nsec``).  What stays unnamed is counted in ``zones.chain_unknown``.
    """
    zones = list(ctx.db.execute(
        "SELECT zone, nsec3_params FROM zones WHERE run_id = ? AND nsec = 'nsec3' "
        "AND nsec3_params IS NOT NULL", [ctx.run_id]))
    if not zones:
        return
    labels, names = _seen_labels(ctx)
    words = {w.strip().lower() for w in wordlist if w.strip()}
    for zone, text in zones:
        params = Nsec3Params.from_text(text)
        hashes = {h for (h,) in ctx.db.execute(
            "SELECT hash FROM nsec3_hashes WHERE run_id = ? AND zone = ?", [ctx.run_id, zone])}
        named: dict[str, tuple[str, str]] = {}
        tries = [(zone, "apex")] + [(f"{w}.{zone}", "wordlist") for w in sorted(words)]
        tries += [(n, "sighting") for n in sorted(names) if n.endswith("." + zone)]
        tries += [(f"{w}.{zone}", "sighting") for w in sorted(labels - words) if w]
        for name, by in tries:
            digest = params.hash_name(name)
            if digest in hashes and digest not in named:
                named[digest] = (name, by)
        opt_out = ctx.db.execute(
            "SELECT COUNT(*) FROM nsec3_hashes WHERE run_id = ? AND zone = ? AND opt_out = 1",
            [ctx.run_id, zone]).fetchone()[0]
        unknown = len(hashes) - len(named)
        with ctx.db.atomic():
            for digest, (name, by) in named.items():
                ctx.db.execute(
                    "UPDATE nsec3_hashes SET name = ?, named_by = ? WHERE run_id = ? AND zone = ? "
                    "AND hash = ?", [name, by, ctx.run_id, zone, digest])
            ctx.see_many((name for name, _ in named.values()), Method.NSEC, f"nsec3:{zone}")
            ctx.db.execute("UPDATE zones SET chain_unknown = ? WHERE run_id = ? AND zone = ?",
                           [unknown, ctx.run_id, zone])
        ctx.notes.append(
            f"NSEC3 chain of {zone}: {len(hashes)} hashes, {len(named)} named, "
            f"{unknown} unknown" + (f", {opt_out} opt-out spans" if opt_out else ""))
