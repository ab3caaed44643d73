"""A Twisted resolver answering from the run's DNS census, so the snapshot matches the probe.

The crawl needs no system resolver: every host name is looked up in ``dns_records`` of the run
(A records, following the CNAMEs the probe recorded).  Addresses the net policy refuses are
never returned; the lookup fails with a message that says why.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Self

from twisted.internet import defer
from twisted.internet.error import DNSLookupError
from twisted.internet.interfaces import IResolverSimple
from zope.interface import implementer

from ..db import reading
from ..netpolicy import NetPolicy


def census_addresses(db_path: str, run_id: int) -> dict[str, list[str]]:
    """Host -> IPv4 addresses recorded in the run, CNAMEs followed (at most 8 deep)."""
    a: dict[str, list[str]] = defaultdict(list)
    cname: dict[str, str] = {}
    with reading(db_path) as conn:
        # streamed: a run of a million domains has millions of these rows
        for name, rtype, value in conn.execute(
            "SELECT name, type, value FROM dns_records WHERE run_id = ? AND type IN ('A', 'CNAME')",
            [run_id],
        ):
            if rtype == "A":
                if value not in a[name]:
                    a[name].append(value)
            else:
                cname[name] = value.rstrip(".").lower()
    for name, target in cname.items():
        seen = {name}
        while target not in a and target in cname and target not in seen and len(seen) < 8:
            seen.add(target)
            target = cname[target]
        if target in a and name not in a:
            a[name] = a[target]
    return dict(a)


@implementer(IResolverSimple)
class CensusResolver:
    """``TWISTED_DNS_RESOLVER`` backed by the census of ``CENSUS_DB`` / ``CENSUS_RUN_ID``."""

    def __init__(self, reactor: Any, addresses: dict[str, list[str]], policy: NetPolicy) -> None:
        self.reactor = reactor
        self.addresses = addresses
        self.policy = policy

    @classmethod
    def from_crawler(cls, crawler: Any, reactor: Any) -> Self:
        settings = crawler.settings
        addresses = census_addresses(settings["CENSUS_DB"], settings.getint("CENSUS_RUN_ID"))
        return cls(reactor, addresses, NetPolicy(settings.getlist("CENSUS_ALLOW_NET")))

    def install_on_reactor(self) -> None:
        self.reactor.installResolver(self)

    def lookup(self, name: str) -> tuple[str | None, str]:
        """The address to connect to for ``name``, or None and the reason."""
        candidates = self.addresses.get(name.rstrip(".").lower(), [])
        if not candidates:
            return None, f"{name} has no A record in this census run"
        for address in candidates:
            if self.policy.allowed(address):
                return address, ""
        return None, self.policy.why_not(candidates[0])

    def getHostByName(self, name: str, timeout: Any = ()) -> defer.Deferred[str]:
        address, why = self.lookup(name)
        if address is None:
            return defer.fail(DNSLookupError(why))
        return defer.succeed(address)
