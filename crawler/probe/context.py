"""What every phase of the probe shares: the census, the engine, the servers, the profile."""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import dns.resolver
import sqlite_utils

from ..db import see_name, see_names
from ..names import Suffixes, normalize_name
from ..netpolicy import NetPolicy
from ..profiles import Profile
from .engine import Engine, Limits, Server
from .options import ProbeOptions, ProgressCallback

if TYPE_CHECKING:
    from .phases import PhaseLog

log = logging.getLogger(__name__)


def system_resolvers() -> list[Server]:
    """The system's resolvers (``/etc/resolv.conf``), used when none are given."""
    try:
        resolver = dns.resolver.Resolver()
    except dns.resolver.NoResolverConfiguration:
        return []
    return [(str(ns), int(resolver.port)) for ns in resolver.nameservers]


def limits_for(profile: Profile, options: ProbeOptions) -> Limits:
    """The profile's politeness, with the run's overrides."""
    polite = profile.politeness
    return Limits(
        queries_in_flight=options.queries_in_flight or polite.queries_in_flight,
        queries_per_second=options.queries_per_second or polite.queries_per_second,
        timeout=options.timeout if options.timeout is not None else polite.timeout,
        retries=options.retries if options.retries is not None else polite.retries,
    )


@dataclass
class Context:
    db: sqlite_utils.Database
    run_id: int
    profile: Profile
    options: ProbeOptions
    engine: Engine
    resolvers: list[Server]
    progress: ProgressCallback | None = None
    notes: list[str] = field(default_factory=list)
    """Plain sentences for the run's message (what was skipped, what was capped)."""
    phases: PhaseLog | None = None
    """The run's probe phases, when this is the probe stage (checkpoints go there)."""

    @classmethod
    def for_run(
        cls,
        db: sqlite_utils.Database,
        run_id: int,
        profile: Profile,
        options: ProbeOptions,
        progress: ProgressCallback | None = None,
    ) -> Context:
        """The context of a probe: the given resolvers (or the system's) and a fresh engine."""
        resolvers = list(options.resolvers) or system_resolvers()
        engine = Engine(limits_for(profile, options))
        return cls(db, run_id, profile, options, engine, resolvers, progress)

    @property
    def suffixes(self) -> Suffixes:
        return self.profile.suffix_set

    @property
    def policy(self) -> NetPolicy:
        return NetPolicy(self.options.allow_net)

    @property
    def workers(self) -> int:
        """Tasks per sweep: enough to keep every resolver's window full."""
        return max(1, self.engine.limits.queries_in_flight * max(1, len(self.resolvers)))

    def authority(self, address: str) -> Server:
        return (address, self.options.ns_port)

    def resolver_for(self, key: str) -> Server:
        """Spread queries over the resolvers, the same name always to the same one."""
        if len(self.resolvers) == 1:
            return self.resolvers[0]
        return self.resolvers[zlib.crc32(key.encode()) % len(self.resolvers)]

    def tick(self, step: str, done: int, total: int | None) -> None:
        if self.progress is not None:
            self.progress(step, done, total)

    def _sighting(
        self, name: str, method: str, source: str
    ) -> tuple[str, str | None, str | None, str, str] | None:
        clean = normalize_name(name)
        if clean is None or not self.suffixes.in_zone(clean):
            return None
        split = self.suffixes.split(clean)
        domain, suffix = split if split else (None, None)
        return clean, domain, suffix, method, source

    def see(self, name: str, method: str, source: str) -> None:
        """Record a sighting of ``name`` if it is under the zone."""
        row = self._sighting(name, method, source)
        if row is not None:
            see_name(self.db, self.run_id, *row)

    def see_many(self, names: Iterable[str], method: str, source: str) -> None:
        """``see`` for many names of one source, written in one batch (a zone transfer's
        sightings use the set-based ``see_bulk`` instead)."""
        rows = [r for name in names if (r := self._sighting(name, method, source))]
        see_names(self.db, self.run_id, rows)
