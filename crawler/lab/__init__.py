"""The lab: an offline replica world (DNS and web) on loopback addresses.

``Lab`` starts the world's DNS and, when the web part is installed, its web servers, and
says which options point a census run at it.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from .dnsserver import LabDNS, free_port
from .world import LabError, ServerSpec, World, load_world

__all__ = ["Lab", "LabDNS", "LabError", "ServerSpec", "World", "free_port", "load_world",
           "serve_until_stopped"]

log = logging.getLogger(__name__)


DEFAULT_PORTS = (5300, 8080, 8443)
"""DNS, HTTP and HTTPS ports of ``census lab`` when none are given."""


def _web_class() -> Any:
    """The web part, if present: another module, and the lab works without it."""
    try:
        from .webserver import LabWeb
    except ImportError:
        log.info("crawler.lab.webserver is not available: the lab serves DNS only")
        return None
    return LabWeb


class Lab:
    """The world's DNS on ``dns_port`` and its web sites on ``http_port``/``https_port``."""

    def __init__(
        self,
        world: World,
        dns_port: int,
        http_port: int | None = None,
        https_port: int | None = None,
    ) -> None:
        self.world = world
        self.dns_port = dns_port
        self.http_port = http_port
        self.https_port = https_port
        self.dns = LabDNS(world, dns_port)
        self.web: Any = None

    @classmethod
    def with_default_ports(
        cls, world: World, dns_port: int | None, http_port: int | None, https_port: int | None
    ) -> Self:
        """Ports not given are 5300, 8080 and 8443 for root and everyone else alike, so the
        command the README shows works as printed whoever runs it."""
        return cls(
            world,
            dns_port if dns_port is not None else DEFAULT_PORTS[0],
            http_port if http_port is not None else DEFAULT_PORTS[1],
            https_port if https_port is not None else DEFAULT_PORTS[2],
        )

    def describe(self) -> str:
        """What the lab serves, server by server, and the flags that point a run at it."""
        world = self.world
        lines = [
            f"lab world {world.name} version {world.version}: {world.description}",
            f"  resolver  {world.resolver_address}:{self.dns_port}",
        ]
        for spec in world.servers:
            faults = " ".join(f"{k}={v}" for k, v in spec.faults.items())
            lines.append(f"  dns       {spec.address}:{self.dns_port} {spec.name} "
                         f"axfr={'yes' if spec.axfr else 'no'} {faults}".rstrip())
        if self.web is not None:
            lines.append(f"  web       http :{self.http_port}  https :{self.https_port}")
        else:
            lines.append("  web       off (no web port given, or no crawler.lab.webserver)")
        lines.append(f"flags: {self.flags()}")
        return "\n".join(lines)

    def start(self) -> Self:
        """Start DNS, then the web part if it is importable and a web port was given."""
        self.dns.start()
        web_class = _web_class()
        if web_class is not None and (self.http_port or self.https_port):
            try:
                self.web = web_class(self.world, self.http_port, self.https_port)
                self.web.start()
            except BaseException:
                self.web = None
                self.dns.stop()
                raise
        return self

    def stop(self) -> None:
        """Stop the web part, then DNS."""
        if self.web is not None:
            self.web.stop()
            self.web = None
        self.dns.stop()

    def flags(self) -> str:
        """The ``census`` options that point a run at this lab."""
        parts = [
            f"--resolver {self.world.resolver_address}:{self.dns_port}",
            f"--ns-port {self.dns_port}",
            "--no-seeds",
            "--ip-range 127.45.176.0/22",
            "--allow-net 127.0.0.0/8",
        ]
        if self.web is not None:
            if self.http_port:
                parts.append(f"--http-port {self.http_port}")
            if self.https_port:
                parts.append(f"--https-port {self.https_port}")
        return " ".join(parts)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def serve_until_stopped(lab: Lab, say: Callable[[str], Any]) -> None:
    """Serve ``lab`` until SIGTERM or Ctrl-C, as a foreground or background command.

    The SIGTERM handler is in place before ``say`` tells what is served: whoever reads that
    and stops the lab at once still gets a clean exit.
    """
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    with lab:
        say(lab.describe())
        try:
            while not stopping.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
