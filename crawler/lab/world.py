"""A lab world: zone files, servers and sites that replicate a national zone on loopback.

The world is data (``world.toml``, ``zones/``, ``sites/``, and an optional ``v2/`` overlay
for re-run tests: only the files that change, and what is removed); this module loads it and
answers DNS questions from it, so that the lab server and the tests share one set of
semantics (RFC 1034 4.3.2, RFC 4592 wildcards).
"""

from __future__ import annotations

import dataclasses
import io
import ipaddress
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import dns.exception
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.reversename
import dns.rrset
import dns.zone

from ..errors import CensusError
from .dnssec import MODES, Denial

_WORLD_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_HOST = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62})(?:\.[a-z0-9](?:[a-z0-9-]{0,62}))*$")
_FAULTS = ("latency", "loss", "truncate", "servfail", "lame", "garbage_axfr", "halfway_axfr")
_MAX_CNAME_CHAIN = 8


class LabError(CensusError):
    """The lab world is missing or malformed, or the lab cannot start."""


@dataclass(frozen=True)
class ServerSpec:
    """One authoritative server of the world: an address, its zones, its faults."""

    name: str
    address: str
    zones: tuple[str, ...]
    axfr: bool = False
    latency: float = 0.0
    loss: float = 0.0
    truncate: bool = False
    servfail: bool = False
    lame: bool = False
    garbage_axfr: bool = False
    halfway_axfr: bool = False

    @property
    def faults(self) -> dict[str, Any]:
        """The faults that are on, for printing and logs."""
        return {key: getattr(self, key) for key in _FAULTS if getattr(self, key)}


@dataclass
class Lookup:
    """What a server says about one question: rcode, sections, authoritative or not."""

    rcode: int = dns.rcode.NOERROR
    answer: list[dns.rrset.RRset] = field(default_factory=list)
    authority: list[dns.rrset.RRset] = field(default_factory=list)
    additional: list[dns.rrset.RRset] = field(default_factory=list)
    aa: bool = True
    referral: bool = False
    # The wire form of the lone SOA of a negative answer, so a server can skip rendering.
    negative_wire: bytes | None = None


class ZoneIndex:
    """A zone with the sets a lookup needs: every existing name (empty non-terminals too)
    and the delegation points."""

    def __init__(self, zone: dns.zone.Zone, denial: Denial | None = None) -> None:
        self.zone = zone
        self.denial = denial
        self.origin: dns.name.Name = zone.origin
        self.names: set[dns.name.Name] = set()
        self.cuts: set[dns.name.Name] = set()
        for name, node in zone.nodes.items():
            if node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.NS) and name != self.origin:
                self.cuts.add(name)
            while name != self.origin and name not in self.names:
                self.names.add(name)
                name = name.parent()
        self.names.add(self.origin)
        self.soa = zone.find_rrset(self.origin, dns.rdatatype.SOA)
        # The SOA of negative answers (RFC 2308 TTL), made once: sweeps are mostly NXDOMAIN.
        self._negative = self.soa.copy()
        self._negative.ttl = min(self.soa.ttl, self.soa[0].minimum)
        buffer = io.BytesIO()
        self._negative.to_wire(buffer)
        self._negative_wire = buffer.getvalue()

    def negative(
        self, rcode: int = dns.rcode.NOERROR, proof: list[dns.rrset.RRset] | None = None
    ) -> Lookup:
        """NXDOMAIN or NODATA: the SOA in the authority section, with the NSEC / NSEC3
        records of a signed zone that prove the absence."""
        if proof:
            return Lookup(rcode=rcode, authority=[self._negative, *proof])
        return Lookup(rcode=rcode, authority=[self._negative], negative_wire=self._negative_wire)

    def _rrset(self, name: dns.name.Name, rdtype: int) -> dns.rrset.RRset | None:
        rdataset = self.zone.get_rdataset(name, rdtype)
        if rdataset is None:
            return None
        return dns.rrset.from_rdata_list(name, rdataset.ttl, list(rdataset))

    def _addresses(self, target: dns.name.Name) -> list[dns.rrset.RRset]:
        if not target.is_subdomain(self.origin):
            return []
        found = [self._rrset(target, t) for t in (dns.rdatatype.A, dns.rdatatype.AAAA)]
        return [rrset for rrset in found if rrset is not None]

    def find(self, qname: dns.name.Name, rdtype: int) -> tuple[Lookup, dns.name.Name | None]:
        """Answer ``qname``/``rdtype`` from this zone alone; also return a CNAME target to
        chase, if the answer is a CNAME and the question was not."""
        # A delegation on the way down to qname means a referral (DS lives in the parent).
        labels = len(qname) - len(self.origin)
        for depth in range(1, labels + 1):
            name = qname.split(len(self.origin) + depth)[1]
            if name in self.cuts and not (name == qname and rdtype == dns.rdatatype.DS):
                ns = self._rrset(name, dns.rdatatype.NS)
                assert ns is not None
                glue = [rrset for target in ns for rrset in self._addresses(target.target)]
                authority = [ns]
                if self.denial is not None:
                    # signed: the DS, or the proof there is none (RFC 4035 3.1.4)
                    ds = self._rrset(name, dns.rdatatype.DS)
                    authority += [ds] if ds is not None else self.denial.nodata(name)
                return Lookup(authority=authority, additional=glue, aa=False,
                              referral=True), None
        node = self.zone.get_node(qname)
        owner = qname
        if node is None:
            if qname in self.names:
                return self.negative(proof=self._nodata(qname)), None
            encloser = qname.parent()
            while encloser not in self.names:
                encloser = encloser.parent()
            wildcard = dns.name.Name((b"*", *encloser.labels))
            node = self.zone.get_node(wildcard)
            if node is None:
                proof = self.denial.nxdomain(qname, encloser) if self.denial else None
                return self.negative(dns.rcode.NXDOMAIN, proof), None
            owner = wildcard
        return self._from_node(qname, owner, rdtype)

    def _nodata(self, name: dns.name.Name) -> list[dns.rrset.RRset] | None:
        return self.denial.nodata(name) if self.denial is not None else None

    def _from_node(
        self, qname: dns.name.Name, owner: dns.name.Name, rdtype: int
    ) -> tuple[Lookup, dns.name.Name | None]:
        node = self.zone.get_node(owner)
        assert node is not None
        if rdtype == dns.rdatatype.ANY:
            rdatasets = list(node.rdatasets)
        else:
            rdatasets = [rds for rds in node.rdatasets if rds.rdtype == rdtype]
        if not rdatasets and rdtype != dns.rdatatype.CNAME:
            cname = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.CNAME)
            if cname is not None:
                rrset = dns.rrset.from_rdata_list(qname, cname.ttl, list(cname))
                return Lookup(answer=[rrset]), cname[0].target
        if not rdatasets:
            return self.negative(proof=self._nodata(owner)), None
        answer = [dns.rrset.from_rdata_list(qname, rds.ttl, list(rds)) for rds in rdatasets]
        lookup = Lookup(answer=answer)
        for rrset in answer:
            if rrset.rdtype == dns.rdatatype.MX:
                for rdata in rrset:
                    lookup.additional.extend(self._addresses(rdata.exchange))
            elif rrset.rdtype == dns.rdatatype.NS:
                for rdata in rrset:
                    lookup.additional.extend(self._addresses(rdata.target))
        return lookup, None


@dataclass
class World:
    """A loaded world; ``zones`` are keyed by origin without the final dot (``"com.kp"``)."""

    name: str
    zone: str
    resolver_address: str
    servers: list[ServerSpec]
    zones: dict[str, dns.zone.Zone]
    root: Path
    version: int = 1
    description: str = ""
    denials: dict[str, Denial] = field(default_factory=dict, repr=False)
    """The signed zones' chains (``[dnssec]`` of world.toml), by origin."""
    _index: dict[dns.name.Name, ZoneIndex] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._index = {z.origin: ZoneIndex(z, self.denials.get(origin))
                       for origin, z in self.zones.items()}

    @property
    def sites_root(self) -> Path:
        """The base ``sites/`` folder (the version overlay is applied by ``site_files``)."""
        return self.root / "sites"

    def server(self, address: str) -> ServerSpec:
        """The server on ``address``."""
        for spec in self.servers:
            if spec.address == address:
                return spec
        raise LabError(f"world {self.name!r} has no server on {address}")

    def with_server(self, address: str, **changes: Any) -> World:
        """A copy of the world with one server changed (tests turn faults on this way)."""
        servers = [
            dataclasses.replace(s, **changes) if s.address == address else s
            for s in self.servers
        ]
        self.server(address)
        return dataclasses.replace(self, servers=servers)

    def addresses(self) -> list[str]:
        """Every loopback address the world uses: servers, resolver, A and PTR addresses."""
        found = {self.resolver_address, *(s.address for s in self.servers)}
        for index in self._index.values():
            for _name, rdataset in index.zone.iterate_rdatasets(dns.rdatatype.A):
                found.update(rdata.address for rdata in rdataset)
            for name, _ in index.zone.iterate_rdatasets(dns.rdatatype.PTR):
                try:
                    found.add(str(dns.reversename.to_address(name)))
                except (dns.exception.SyntaxError, ValueError):
                    continue
        return sorted(found, key=ipaddress.ip_address)

    def index_for(
        self, qname: dns.name.Name, origins: set[dns.name.Name] | None = None
    ) -> ZoneIndex | None:
        """The deepest zone of the world (or of ``origins``) that contains ``qname``."""
        name = qname
        while True:
            index = self._index.get(name)
            if index is not None and (origins is None or name in origins):
                return index
            if name == dns.name.root:
                return None
            name = name.parent()

    def authoritative(
        self, qname: dns.name.Name, rdtype: int, origins: set[dns.name.Name]
    ) -> Lookup | None:
        """What an authoritative server of ``origins`` answers; None if it serves no zone
        containing ``qname`` (the server then says REFUSED)."""
        index = self.index_for(qname, origins)
        if index is None:
            return None
        lookup, target = index.find(qname, rdtype)
        chain = lookup.answer
        while target is not None and target.is_subdomain(index.origin):
            if len(chain) >= _MAX_CNAME_CHAIN:
                break
            lookup, target = index.find(target, rdtype)
            if lookup.referral:
                lookup = Lookup()
                break
            chain = chain + lookup.answer
        lookup.answer = chain
        return lookup

    def recursive(self, qname: dns.name.Name, rdtype: int) -> Lookup:
        """What the world's resolver answers: any zone, CNAMEs followed across zones."""
        chain: list[dns.rrset.RRset] = []
        target: dns.name.Name | None = qname
        lookup = Lookup()
        while target is not None and len(chain) <= _MAX_CNAME_CHAIN:
            index = self.index_for(target)
            if index is None:
                lookup = Lookup(rcode=dns.rcode.NXDOMAIN)
                break
            lookup, target = index.find(target, rdtype)
            if lookup.referral:
                # Delegated to a zone the world does not hold: no server can answer.
                lookup = Lookup(rcode=dns.rcode.SERVFAIL)
                break
            chain.extend(lookup.answer)
        lookup.answer = chain
        lookup.aa = False
        lookup.additional = []
        return lookup

    def resolve(self, name: str, rdtype: str) -> list[str]:
        """The values the resolver gives for ``name``/``rdtype`` (CNAMEs followed)."""
        qname = dns.name.from_text(name)
        wanted = dns.rdatatype.from_text(rdtype)
        lookup = self.recursive(qname, wanted)
        return [
            rdata.to_text()
            for rrset in lookup.answer
            if rrset.rdtype == wanted or wanted == dns.rdatatype.ANY
            for rdata in rrset
        ]

    def site_hosts(self) -> list[str]:
        """Every host with a site folder in the base or this version's overlay (a removed
        one too: :meth:`site_files` then says it is gone)."""
        roots = [self.sites_root]
        if self.version > 1:
            roots.append(self._overlay_sites)
        return sorted({p.name for root in roots if root.is_dir() for p in root.iterdir()
                       if p.is_dir()})

    def site_files(self, host: str) -> dict[str, Path] | None:
        """The files of ``host``'s site in this version, by path in the site
        (``"en/index.html"``); None if it has no site or the version removed it.

        A version's overlay (``vN/sites/<host>/``) holds only what changes: its files replace
        the base's same-named ones or are new, and its ``REMOVED`` file names the base's files
        that go, one a line (a folder by a final ``/``); a ``REMOVED`` naming nothing removes
        the whole site.  ``host`` comes from the network, so only a plain host name is
        accepted as a path.
        """
        host = host.strip().rstrip(".").lower()
        if not _HOST.match(host) or len(host) > 253:
            return None
        base = self.sites_root / host
        files = _files(base) if base.is_dir() else {}
        overlay = self._overlay_sites / host if self.version > 1 else None
        if overlay is not None and overlay.is_dir():
            changes = _files(overlay)
            if "REMOVED" in changes:
                gone = _removed(changes.pop("REMOVED"))
                if not gone:
                    return None
                files = {rel: path for rel, path in files.items()
                         if rel not in gone and not rel.startswith(tuple(g for g in gone
                                                                          if g.endswith("/")))}
            files.update(changes)
        return files or None

    @property
    def _overlay_sites(self) -> Path:
        return self.root / f"v{self.version}" / "sites"


def _files(folder: Path) -> dict[str, Path]:
    """Every file below ``folder``, by its path there (``/``-separated)."""
    return {path.relative_to(folder).as_posix(): path
            for path in folder.rglob("*") if path.is_file()}


def _removed(path: Path) -> set[str]:
    """The paths a ``REMOVED`` file names (``#`` starts a comment)."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text("utf-8").splitlines())
    return {line.lstrip("/") for line in lines if line}


def _world_root(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if "/" in name_or_path or name_or_path.startswith(".") or path.is_dir():
        if not (path / "world.toml").is_file():
            raise LabError(f"no world at {name_or_path!r}: world.toml is missing")
        return path
    if not _WORLD_NAME.match(name_or_path):
        raise LabError(f"invalid world name {name_or_path!r}")
    root = Path(str(resources.files("crawler") / "data" / "worlds" / name_or_path))
    if not (root / "world.toml").is_file():
        raise LabError(f"no embedded world {name_or_path!r}")
    return root


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise LabError(f"cannot read {path}: {exc}") from None


def _merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Overlay keys win; ``servers`` entries merge by address (new addresses are added)."""
    merged = {**base, **{k: v for k, v in overlay.items() if k != "servers"}}
    servers = {s.get("address"): dict(s) for s in base.get("servers", [])}
    for spec in overlay.get("servers", []):
        servers.setdefault(spec.get("address"), {}).update(spec)
    merged["servers"] = list(servers.values())
    return merged


def _load_zones(folders: list[Path]) -> dict[str, dns.zone.Zone]:
    files: dict[str, Path] = {}
    for folder in folders:
        for path in sorted(folder.glob("*.zone")):
            files[path.name[: -len(".zone")].lower()] = path
    zones = {}
    for origin, path in files.items():
        try:
            zones[origin] = dns.zone.from_file(
                str(path), origin=origin + ".", relativize=False
            )
        except (OSError, dns.exception.DNSException) as exc:
            raise LabError(f"bad zone file {path}: {exc}") from None
    return zones


def _server(spec: dict[str, Any], zones: dict[str, dns.zone.Zone]) -> ServerSpec:
    try:
        server = ServerSpec(
            name=str(spec["name"]),
            address=str(ipaddress.IPv4Address(spec["address"])),
            zones=tuple(str(z).rstrip(".").lower() for z in spec["zones"]),
            **{k: v for k, v in spec.items() if k not in ("name", "address", "zones")},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise LabError(f"bad server {spec!r}: {exc}") from None
    if not ipaddress.IPv4Address(server.address).is_loopback:
        raise LabError(f"server {server.name} is not on loopback: {server.address}")
    missing = [z for z in server.zones if z not in zones]
    if missing:
        raise LabError(f"server {server.name} serves zones with no zone file: {missing}")
    return server


def load_world(name_or_path: str = "kp", version: int = 1) -> World:
    """Load an embedded world by name (``kp``) or a world folder; ``version=2`` applies
    the folder's ``v2/`` overlay (world.toml merged, same-named zone files replaced, site
    files replaced, added or removed file by file: :meth:`World.site_files`)."""
    root = _world_root(name_or_path)
    config = _read_toml(root / "world.toml")
    folders = [root / "zones"]
    if version > 1:
        overlay_root = root / f"v{version}"
        if not (overlay_root / "world.toml").is_file():
            raise LabError(f"world {name_or_path!r} has no version {version}")
        config = _merge(config, _read_toml(overlay_root / "world.toml"))
        folders.append(overlay_root / "zones")
    elif version < 1:
        raise LabError(f"invalid world version {version}")
    zones = _load_zones(folders)
    try:
        apex = str(config["zone"]).rstrip(".").lower()
        resolver = str(ipaddress.IPv4Address(config["resolver"]))
    except (KeyError, ValueError) as exc:
        raise LabError(f"bad world.toml in {root}: {exc}") from None
    if apex not in zones:
        raise LabError(f"world {name_or_path!r} has no zone file for its apex {apex!r}")
    denials = {}
    for origin, mode in config.get("dnssec", {}).items():
        origin = str(origin).rstrip(".").lower()
        if origin not in zones or mode not in MODES:
            raise LabError(f"bad [dnssec] entry {origin!r} = {mode!r}: a zone of the world "
                           f"signed with one of {MODES}")
        denials[origin] = Denial(zones[origin], mode)
    servers = [_server(spec, zones) for spec in config.get("servers", [])]
    addresses = [s.address for s in servers] + [resolver]
    if len(set(addresses)) != len(addresses):
        raise LabError(f"world {name_or_path!r} uses one address twice: {addresses}")
    return World(
        name=str(config.get("name", root.name)),
        zone=apex,
        resolver_address=resolver,
        servers=servers,
        zones=zones,
        root=root,
        version=version,
        description=str(config.get("description", "")),
        denials=denials,
    )
