"""Zone profiles: what the census knows about a zone before it asks the network.

A profile is a TOML file (see ``crawler/data/profiles/kp.toml``): the zone, its second-level
suffixes, national address ranges, seed names with their public sources, a wordlist and the
politeness settings.  ``census probe ZONE`` uses the embedded profile of ZONE if there is one,
otherwise a bare profile with no seeds and no ranges; ``--profile FILE`` loads any other.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import ProfileError
from .names import Suffixes, normalize_name, normalize_zone
from .netpolicy import parse_networks


@dataclass(frozen=True)
class Seed:
    name: str
    source: str


@dataclass(frozen=True)
class Politeness:
    queries_in_flight: int = 4
    queries_per_second: float = 20.0
    timeout: float = 3.0
    retries: int = 2
    axfr_timeout: float = 30.0
    crawl_delay: float = 1.0
    max_pages: int = 200


@dataclass(frozen=True)
class Transfer:
    """Where a registry publishes its zone by AXFR, beyond the zone's own nameservers."""

    servers: tuple[str, ...] = ()
    """Host names or addresses to ask for AXFR of the zone (e.g. ``zonedata.iis.se``)."""
    tsig: str | None = None
    """The published key as ``NAME:ALG:SECRET``, when the registry signs its transfers."""
    source: str = ""


RECORD_TYPES = ("A", "AAAA", "NS", "MX", "TXT", "SOA", "CNAME", "CAA")
RECORD_HOSTS = ("", "www.", "mail.")


@dataclass(frozen=True)
class Records:
    """What the record phase asks of every registrable domain: ``types`` at each of ``hosts``.

    The default, 24 questions a domain, suits a zone of thousands; a zone of a million can
    ask fewer (e.g. ``types = ["A", "NS"]``, ``hosts = [""]``) and say so in its profile.
    """

    types: tuple[str, ...] = RECORD_TYPES
    hosts: tuple[str, ...] = RECORD_HOSTS
    """Prefixes of the domain: ``""`` is the domain itself, ``"www."`` its web host."""


@dataclass(frozen=True)
class Profile:
    zone: str
    title: str = ""
    suffixes: tuple[str, ...] = ()
    ranges: tuple[str, ...] = ()
    seeds: tuple[Seed, ...] = ()
    wordlist: str | None = None
    politeness: Politeness = field(default_factory=Politeness)
    transfer: Transfer = field(default_factory=Transfer)
    records: Records = field(default_factory=Records)
    path: str = "<generic>"

    @functools.cached_property
    def suffix_set(self) -> Suffixes:
        return Suffixes(self.zone, list(self.suffixes))


def _embedded(name: str) -> resources.abc.Traversable:
    return resources.files("crawler") / "data" / "profiles" / f"{name}.toml"


def embedded_profiles() -> list[str]:
    folder = resources.files("crawler") / "data" / "profiles"
    return sorted(
        p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")
    )


def load_profile(zone: str | None = None, path: str | Path | None = None) -> Profile:
    """The profile for ``zone``: from ``path`` if given, else embedded, else generic."""
    if path is not None:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ProfileError(f"cannot read profile {path}: {exc.strerror}") from None
        profile = parse_profile(text, str(path))
        if zone is not None and normalize_zone(zone) != profile.zone:
            raise ProfileError(f"profile {path} is for zone {profile.zone!r}, not {zone!r}")
        return profile
    zone = normalize_zone("kp" if zone is None else zone)
    resource = _embedded(zone)
    if resource.is_file():
        return parse_profile(resource.read_text(encoding="utf-8"), f"embedded:{zone}")
    return Profile(zone=zone)


def parse_profile(text: str, where: str) -> Profile:
    """Parse and check a profile; every mistake becomes one ``ProfileError`` line."""
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"malformed profile {where}: {exc}") from None
    if "zone" not in data or not isinstance(data["zone"], str):
        raise ProfileError(f"malformed profile {where}: 'zone' (a string) is required")
    zone = normalize_zone(data["zone"])
    try:
        suffixes = tuple(normalize_zone(s) for s in data.get("suffixes", []))
        ranges = tuple(str(r) for r in data.get("ranges", []))
        parse_networks(ranges)
        seeds = []
        for group in data.get("seeds", []):
            source = str(group["source"])
            for name in group["names"]:
                clean = normalize_name(str(name))
                if clean is None or not (clean == zone or clean.endswith("." + zone)):
                    raise ProfileError(
                        f"malformed profile {where}: seed {name!r} is not under {zone}"
                    )
                seeds.append(Seed(clean, source))
        politeness = Politeness(**data.get("politeness", {}))
        transfer = _transfer(data.get("transfer", {}))
        records = _records(data.get("records", {}))
    except ProfileError:
        raise
    except Exception as exc:
        raise ProfileError(f"malformed profile {where}: {exc}") from None
    return Profile(
        zone=zone,
        title=str(data.get("title", "")),
        suffixes=suffixes,
        ranges=ranges,
        seeds=tuple(seeds),
        wordlist=data.get("wordlist"),
        politeness=politeness,
        transfer=transfer,
        records=records,
        path=where,
    )


def _records(data: dict[str, Any]) -> Records:
    """``[records]``: the types and host prefixes the record phase asks of each domain."""
    import dns.rdatatype

    unknown = set(data) - {"types", "hosts"}
    if unknown:
        raise ValueError(f"unknown [records] keys {sorted(unknown)}")
    types = tuple(str(t).upper() for t in data.get("types", RECORD_TYPES))
    for rdtype in types:
        dns.rdatatype.from_text(rdtype)  # an unknown type is a mistake of the profile
    hosts = tuple(str(h) for h in data.get("hosts", RECORD_HOSTS))
    for host in hosts:
        if host and (not host.endswith(".") or normalize_name(host + "x") is None):
            raise ValueError(f"[records] host {host!r} is not '' or a label and a dot")
    return Records(types, hosts)


def _transfer(data: dict[str, Any]) -> Transfer:
    """``[transfer]``: servers, source and an optional ``[transfer.tsig]`` key."""
    from .probe.tsig import TsigKey

    unknown = set(data) - {"servers", "source", "tsig"}
    if unknown:
        raise ValueError(f"unknown [transfer] keys {sorted(unknown)}")
    tsig = None
    if "tsig" in data:
        key = data["tsig"]
        spec = f"{key['name']}:{key['algorithm']}:{key['secret']}"
        TsigKey.parse(spec)
        tsig = spec
    return Transfer(
        servers=tuple(str(s) for s in data.get("servers", [])),
        tsig=tsig,
        source=str(data.get("source", "")),
    )


def read_wordlist(profile: Profile, path: str | Path | None = None) -> list[str]:
    """Labels to probe: from ``path`` if given, else the profile's embedded wordlist."""
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ProfileError(f"cannot read wordlist {path}: {exc.strerror}") from None
    elif profile.wordlist:
        text = (resources.files("crawler") / "data" / "wordlists" / profile.wordlist).read_text(
            encoding="utf-8"
        )
    else:
        return []
    labels = []
    for line in text.splitlines():
        label = line.split("#", 1)[0].strip().lower()
        if label and normalize_name(label) == label and "." not in label:
            labels.append(label)
    return list(dict.fromkeys(labels))
