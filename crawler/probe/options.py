"""What a probe is asked to do: built by the CLI from its options, recorded in ``runs.options``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum


class Outcome(StrEnum):
    """The result of one zone transfer attempt (``axfr_attempts.outcome``)."""

    SUCCESS = "success"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    ERROR = "error"


@dataclass(frozen=True)
class ProbeOptions:
    resolvers: tuple[tuple[str, int], ...] = ()
    """Recursive resolvers as (address, port); empty means the system's."""
    ns_port: int = 53
    """Port of every authoritative server (53 in the world; another port in the lab)."""
    seeds: bool = True
    wordlist: tuple[str, ...] | None = None
    """Labels to probe under each suffix; None means the profile's list, () means none."""
    ip_ranges: tuple[str, ...] | None = None
    """Ranges for the PTR sweep; None means the profile's."""
    timeout: float | None = None
    queries_per_second: float | None = None
    queries_in_flight: int | None = None
    retries: int | None = None
    extra_names: tuple[str, ...] = field(default=())
    """Names to probe beyond the enumeration (e.g. found in crawled links)."""
    allow_net: tuple[str, ...] = ()
    """Non-global ranges the probe may contact when zone data points there (the lab: 127/8).

    The resolvers given by the user are always contacted; addresses learned from the network
    (nameservers, glue) must be globally routable or inside one of these."""
    max_zones: int = 1000
    """Most zones (the zone, its sub-zones and delegated domains) to transfer in one run."""
    tsig: str | None = None
    """``NAME:ALG:SECRET`` signing the transfers of the zone itself; None: the profile's key."""


ProgressCallback = Callable[[str, int, int | None], None]
"""``progress(step, done, total)``: what the probe is doing, for the CLI to draw."""


@dataclass
class ProbeResult:
    status: str
    """``complete``, ``partial`` (some servers never answered) or ``failed`` (nothing answered)."""
    message: str
    domains: int = 0
    answered: int = 0
    """Queries that got any answer (including NXDOMAIN and REFUSED)."""
    timeouts: int = 0
