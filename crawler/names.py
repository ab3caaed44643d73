"""Zone names and registrable domains, by the profile's suffixes (not the Public Suffix List).

The PSL misses several ``.kp`` second-level suffixes (``co``, ``net``, ``aca``, ``law``,
``sca``), so the profile's own list decides what a registrable domain is.
"""

from __future__ import annotations

import re

import dns.name

from .errors import BadZoneName

_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


def normalize_zone(zone: str) -> str:
    """``'KP.'`` -> ``'kp'``; raise ``BadZoneName`` for anything that is not a DNS zone name."""
    text = zone.strip().rstrip(".").lower()
    if not text:
        raise BadZoneName(f"invalid zone name {zone!r}: empty")
    try:
        text = dns.name.from_text(text).to_text(omit_final_dot=True)
    except (dns.exception.DNSException, UnicodeError) as exc:
        raise BadZoneName(f"invalid zone name {zone!r}: {exc}") from None
    text = text.encode("idna").decode("ascii") if not text.isascii() else text
    for label, given in zip(text.split("."), zone.strip().rstrip(".").split("."), strict=False):
        if not _LABEL.match(label):
            raise BadZoneName(f"invalid zone name {zone!r}: bad label {given!r}")
    if len(text) > 253:
        raise BadZoneName(f"invalid zone name {zone!r}: longer than 253 characters")
    return text


def normalize_name(name: str) -> str | None:
    """A host name from the network, lower-cased without the final dot; None if not a name."""
    text = name.strip().rstrip(".").lower()
    if not text or len(text) > 253:
        return None
    labels = text.split(".")
    if not all(_LABEL.match(label) for label in labels):
        return None
    return text


class Suffixes:
    """Which names under a zone are registrable domains.

    ``Suffixes("kp", ["com", "org"])``: ``kcna.kp`` and ``airkoryo.com.kp`` are registrable
    domains; ``com.kp`` is a suffix (a delegated sub-zone), ``www.kcna.kp`` is a host of
    ``kcna.kp``.
    """

    def __init__(self, zone: str, second_level: list[str]) -> None:
        self.zone = zone
        self.suffixes = {zone} | {f"{label}.{zone}" for label in second_level}

    def is_suffix(self, name: str) -> bool:
        return name in self.suffixes

    def in_zone(self, name: str) -> bool:
        return name == self.zone or name.endswith("." + self.zone)

    def split(self, name: str) -> tuple[str, str] | None:
        """``(domain, suffix)`` of the registrable domain ``name`` falls under, else None."""
        if not self.in_zone(name) or self.is_suffix(name):
            return None
        labels = name.split(".")
        for i in range(1, len(labels)):
            suffix = ".".join(labels[i:])
            if suffix in self.suffixes:
                # the longest matching suffix wins: walk from the left
                return ".".join(labels[i - 1 :]), suffix
        return None

    def domain_of(self, name: str) -> str | None:
        found = self.split(name)
        return found[0] if found else None

    def suffix_of(self, name: str) -> str | None:
        found = self.split(name)
        return found[1] if found else None
