"""DNSSEC denial for lab zones: the NSEC or NSEC3 chain a signer would add, built at load.

A world names its signed zones in ``world.toml`` (``[dnssec]``: ``"zz" = "nsec"``,
``"co.zz" = "nsec3"``, ``"net.zz" = "nsec3-optout"``).  Loading such a zone adds a DNSKEY
at the apex, the chain (NSEC, or NSEC3 with NSEC3PARAM: SHA-1, no salt, no extra
iterations, as RFC 9276 advises) and nothing else: the lab answers the denial proofs a
walker reads, it does not make RRSIGs (the census walks chains, it does not validate; the
Knot tests cover real signatures).  Opt-out leaves insecure delegations out of the NSEC3
chain and sets the flag on every record, as Knot does.
"""

from __future__ import annotations

import base64
import bisect
import hashlib

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone

MODES = ("nsec", "nsec3", "nsec3-optout")
# A placeholder key (ECDSA P-256 shape): the lab never signs, a zone with a DNSKEY is signed.
DNSKEY = "257 3 13 " + base64.b64encode(hashlib.sha512(b"census lab key").digest()).decode()


def nsec3_hash(name: dns.name.Name) -> str:
    """RFC 5155 hash with no salt and no extra iterations, base32hex, lower case."""
    wire = name.canonicalize().to_wire()
    assert wire is not None
    return base64.b32hexencode(hashlib.sha1(wire).digest()).decode().lower()


class Denial:
    """The chain of one zone, and the records that prove a name or a type absent."""

    def __init__(self, zone: dns.zone.Zone, mode: str) -> None:
        self.mode = mode
        self.origin: dns.name.Name = zone.origin
        ttl = zone.find_rdataset(self.origin, dns.rdatatype.SOA)[0].minimum
        cuts = {name for name, node in zone.nodes.items() if name != self.origin
                and node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.NS)}
        owners = sorted(name for name in zone.nodes
                        if not any(a in cuts for a in _ancestors(name, self.origin)))
        types = {name: self._types(zone, name, name in cuts) for name in owners}
        _add(zone, self.origin, dns.rdatatype.DNSKEY, DNSKEY, ttl)
        types[self.origin].append("DNSKEY")
        self.rrsets: dict[object, dns.rrset.RRset] = {}
        if mode == "nsec":
            self.owners = owners
            for i, name in enumerate(owners):
                following = owners[(i + 1) % len(owners)]
                text = f"{following} {' '.join(sorted({*types[name], 'NSEC'}))}"
                self.rrsets[name] = _add(zone, name, dns.rdatatype.NSEC, text, ttl)
            return
        opt_out = mode == "nsec3-optout"
        if opt_out:
            owners = [n for n in owners if n not in cuts
                      or zone.get_rdataset(n, dns.rdatatype.DS) is not None]
        hashed = set(owners)
        for name in owners:  # empty non-terminals have NSEC3 records too
            hashed.update(_ancestors(name, self.origin))
        _add(zone, self.origin, dns.rdatatype.NSEC3PARAM, "1 0 0 -", 0)
        types[self.origin].append("NSEC3PARAM")
        by_hash = {nsec3_hash(name): name for name in hashed}
        self.hashes = sorted(by_hash)
        for i, digest in enumerate(self.hashes):
            following = self.hashes[(i + 1) % len(self.hashes)].upper()
            bitmap = " ".join(sorted(types.get(by_hash[digest], [])))
            text = f"1 {int(opt_out)} 0 - {following} {bitmap}".strip()
            owner = dns.name.Name((digest.encode(), *self.origin.labels))
            self.rrsets[digest] = _add(zone, owner, dns.rdatatype.NSEC3, text, ttl)

    @staticmethod
    def _types(zone: dns.zone.Zone, name: dns.name.Name, cut: bool) -> list[str]:
        node = zone.nodes[name]
        found = [dns.rdatatype.to_text(rds.rdtype) for rds in node.rdatasets]
        return [t for t in found if t in ("NS", "DS")] if cut else found

    def _cover(self, name: dns.name.Name) -> dns.rrset.RRset:
        """The record whose span holds ``name`` (or its hash)."""
        if self.mode == "nsec":
            return self.rrsets[self.owners[bisect.bisect_right(self.owners, name) - 1]]
        digest = nsec3_hash(name)
        return self.rrsets[self.hashes[bisect.bisect_left(self.hashes, digest) - 1]]

    def _match(self, name: dns.name.Name) -> dns.rrset.RRset | None:
        return self.rrsets.get(name if self.mode == "nsec" else nsec3_hash(name))

    def nodata(self, name: dns.name.Name) -> list[dns.rrset.RRset]:
        """Proof that ``name`` exists without the type asked (or, at a delegation, no DS)."""
        match = self._match(name)
        return [match] if match is not None else [self._cover(name)]

    def nxdomain(self, qname: dns.name.Name, encloser: dns.name.Name) -> list[dns.rrset.RRset]:
        """Proof that ``qname`` does not exist and no wildcard at its closest encloser does."""
        wildcard = dns.name.Name((b"*", *encloser.labels))
        if self.mode == "nsec":
            proofs = [self._cover(qname), self._cover(wildcard)]
        else:
            next_closer = qname.split(len(encloser) + 1)[1]
            proofs = [*self.nodata(encloser), self._cover(next_closer), self._cover(wildcard)]
        unique: list[dns.rrset.RRset] = []
        for rrset in proofs:
            if all(rrset is not other for other in unique):
                unique.append(rrset)
        return unique


def _ancestors(name: dns.name.Name, origin: dns.name.Name) -> list[dns.name.Name]:
    """The names strictly between ``name`` and ``origin``."""
    found = []
    name = name.parent() if name != origin else origin
    while name != origin and name.is_subdomain(origin):
        found.append(name)
        name = name.parent()
    return found


def _add(zone: dns.zone.Zone, name: dns.name.Name, rdtype: dns.rdatatype.RdataType, text: str,
         ttl: int) -> dns.rrset.RRset:
    rdata = dns.rdata.from_text(dns.rdataclass.IN, rdtype, text, origin=zone.origin,
                                relativize=False)
    rdataset = zone.find_rdataset(name, rdtype, create=True)
    rdataset.add(rdata, ttl)
    return dns.rrset.from_rdata_list(name, ttl, list(rdataset))
