"""A real Knot DNS on loopback, for the interoperability tests and the bench.

``Knot(workdir, "127.0.0.2", port, zones)`` writes a config and the zone files into
``workdir``, starts ``knotd`` in the foreground and waits until every zone answers SOA.
Transfers are allowed or refused for the whole server (``allow_transfer``), or allowed only
to queries signed with the TSIG key ``tsig`` (``NAME:ALG:SECRET``); zones named in ``signing``
are signed on load by Knot itself with a policy: ``nsec``, ``nsec3`` (salted),
``nsec3-bare`` (no salt, no extra iterations) or ``nsec3-optout`` (the same with opt-out).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import dns.message
import dns.query
import dns.rcode

KNOTD = shutil.which("knotd") or "/usr/sbin/knotd"


def knot_available() -> bool:
    return Path(KNOTD).exists()


def free_port(addresses: tuple[str, ...] = ("127.0.0.1",)) -> int:
    """A port free for both UDP and TCP on every one of ``addresses``."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((addresses[0], 0))
            port = probe.getsockname()[1]
        try:
            for address in addresses:
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    with socket.socket(socket.AF_INET, kind) as s:
                        s.bind((address, port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port")


class Knot:
    def __init__(
        self,
        workdir: Path,
        address: str,
        port: int,
        zones: dict[str, str],
        *,
        allow_transfer: bool = True,
        signing: dict[str, str] | None = None,
        tsig: str | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.address = address
        self.port = port
        self.zones = zones
        self.allow_transfer = allow_transfer
        self.signing = signing or {}
        self.tsig = tsig
        self.process: subprocess.Popen[bytes] | None = None

    def config(self) -> str:
        d = self.workdir
        lines = [
            "server:", f"    rundir: {d}", f"    listen: {self.address}@{self.port}",
            "    tcp-io-timeout: 500",
            "database:", f"    storage: {d / 'db'}",
            "log:", "  - target: stderr", "    any: warning",
        ]
        if self.tsig:
            name, algorithm, secret = self.tsig.split(":")
            lines += ["key:", f"  - id: {name}", f"    algorithm: {algorithm}",
                      f"    secret: {secret}"]
        lines += [
            "acl:", "  - id: transfer", "    address: 127.0.0.0/8", "    action: transfer",
            *([f"    key: {self.tsig.split(':')[0]}"] if self.tsig else []),
            "policy:",
            "  - id: nsec", "    nsec3: off",
            "  - id: nsec3", "    nsec3: on", "    nsec3-iterations: 0",
            # RFC 9276 parameters (no salt, no extra iterations): the lab's hashes exactly
            "  - id: nsec3-bare", "    nsec3: on", "    nsec3-iterations: 0",
            "    nsec3-salt-length: 0",
            "  - id: nsec3-optout", "    nsec3: on", "    nsec3-iterations: 0",
            "    nsec3-salt-length: 0", "    nsec3-opt-out: on",
            "template:", "  - id: default", f"    storage: {d}", '    file: "%s.zone"',
            "    zonefile-sync: -1", "    zonefile-load: whole", "    journal-content: none",
            "zone:",
        ]
        for zone in self.zones:
            lines.append(f"  - domain: {zone}")
            if self.allow_transfer:
                lines.append("    acl: transfer")
            if zone in self.signing:
                lines += ["    dnssec-signing: on", f"    dnssec-policy: {self.signing[zone]}"]
        return "\n".join(lines) + "\n"

    def start(self, wait: float = 20.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "db").mkdir(exist_ok=True)
        for zone, text in self.zones.items():
            (self.workdir / f"{zone}.zone").write_text(text, encoding="utf-8")
        conf = self.workdir / "knot.conf"
        conf.write_text(self.config(), encoding="utf-8")
        self.log = open(self.workdir / "knot.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen([KNOTD, "-c", str(conf)], stdout=self.log,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + wait
        pending = set(self.zones)
        while pending:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                log = (self.workdir / "knot.log").read_text(errors="replace")
                raise RuntimeError(f"knotd did not serve {sorted(pending)}: {log[-2000:]}")
            for zone in sorted(pending):
                if self._answers(zone):
                    pending.discard(zone)
            time.sleep(0.05)

    def _answers(self, zone: str) -> bool:
        try:
            response = dns.query.udp(dns.message.make_query(zone, "SOA"), self.address,
                                     timeout=0.2, port=self.port)
        except (OSError, dns.exception.DNSException):
            return False
        return response.rcode() == dns.rcode.NOERROR and bool(response.answer)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
            self.log.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
