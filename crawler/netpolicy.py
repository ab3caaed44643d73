"""Which addresses the census may connect to.

Zone data is hostile input: a name may point at ``127.0.0.1`` or ``10.0.0.1``.  By default only
globally routable addresses are allowed; ``--allow-net CIDR`` opts a range in (the lab uses
``--allow-net 127.0.0.0/8``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from .errors import CensusError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(cidrs: Iterable[str]) -> list[Network]:
    networks = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr, strict=False))
        except ValueError:
            raise CensusError(
                f"invalid network {cidr!r}: expected CIDR such as 127.0.0.0/8"
            ) from None
    return networks


MAX_REMEMBERED = 65536
"""Addresses whose answer a policy keeps: a crawl connects to a few per site, again and again."""


class NetPolicy:
    def __init__(self, allow: Iterable[str] = ()) -> None:
        self.allow = parse_networks(allow)
        self._answers: dict[str, bool] = {}

    def allowed(self, address: str) -> bool:
        """True if the census may connect to ``address``."""
        answer = self._answers.get(address)
        if answer is None:  # parsing the address is most of the cost, once a connection
            if len(self._answers) >= MAX_REMEMBERED:
                self._answers.clear()
            answer = self._answers[address] = self._allowed(address)
        return answer

    def _allowed(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if any(ip in net for net in self.allow if net.version == ip.version):
            return True
        return ip.is_global

    def why_not(self, address: str) -> str:
        return f"{address} is not a globally routable address (use --allow-net to opt it in)"
