"""Which addresses the census may connect to.

Zone data is hostile input: a name may point at ``127.0.0.1`` or ``10.0.0.1``.  By default only
globally routable addresses are allowed; ``--allow-net CIDR`` opts a range in (the lab uses
``--allow-net 127.0.0.0/8``).
"""

from __future__ import annotations

import functools
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


@functools.lru_cache(maxsize=65536)
def ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``host`` as an address, or None for a name: remembered, as a crawl meets the same few
    hosts a site again and again, and parsing was most of the cost of a check."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


class NetPolicy:
    def __init__(self, allow: Iterable[str] = ()) -> None:
        self.allow = parse_networks(allow)

    def allowed(self, address: str) -> bool:
        """True if the census may connect to ``address``."""
        ip = ip_literal(address)
        if ip is None:
            return False
        if any(ip in net for net in self.allow if net.version == ip.version):
            return True
        return ip.is_global

    def why_not(self, address: str) -> str:
        return f"{address} is not a globally routable address (use --allow-net to opt it in)"
