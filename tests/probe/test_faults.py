"""Bad servers lose nothing: tiny fault servers, each named for its fault.

A transfer server speaks just enough AXFR to start well and then misbehave; the dead resolver
is a bound UDP socket that never answers.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import Iterator

import pytest

from crawler.db import open_census, start_run
from crawler.lab.knot import free_port
from crawler.probe import ProbeOptions, probe_run
from crawler.probe.context import Context, limits_for
from crawler.probe.engine import Engine, Limits, Rcode
from crawler.probe.options import Outcome
from crawler.probe.zones import ZoneState, transfer
from crawler.profiles import Profile
from tests.probe.test_axfr import ZONE, messages

PROFILE = Profile(zone="kp", suffixes=("com",))


class TransferServer:
    """Answers every AXFR with ``self.wires()``; subclasses misbehave."""

    def wires(self, query_id: bytes) -> list[bytes]:
        return [query_id + w[2:] for w in messages(ZONE, 2)]

    close_after = True
    """Close the connection after the last message (False: hang, send nothing more)."""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readexactly(2)
        query = await reader.readexactly(struct.unpack("!H", head)[0])
        for wire in self.wires(query[:2]):
            writer.write(struct.pack("!H", len(wire)) + wire)
        await writer.drain()
        if not self.close_after:
            await asyncio.sleep(30)
        writer.close()


class GarbageMidTransfer(TransferServer):
    def wires(self, query_id: bytes) -> list[bytes]:
        good = super().wires(query_id)
        header = query_id + b"\x84\x00" + b"\x00\x01\x00\x05\x00\x00\x00\x00"
        return [good[0], header + b"\xfe" * 50]


class HalfwayClose(TransferServer):
    def wires(self, query_id: bytes) -> list[bytes]:
        return super().wires(query_id)[:2]


class SilentAfterFirst(TransferServer):
    close_after = False

    def wires(self, query_id: bytes) -> list[bytes]:
        return super().wires(query_id)[:1]


def run_transfer(server: TransferServer, tmp_path) -> tuple[dict, int]:
    """One attempt against ``server`` into a fresh census: the attempt row, records stored."""
    db = open_census(tmp_path / "census.db")
    run_id = start_run(db, "kp", {})
    port = free_port()
    options = ProbeOptions(ns_port=port, timeout=0.5, allow_net=("127.0.0.0/8",))

    async def main() -> None:
        listener = await asyncio.start_server(server.handle, "127.0.0.1", port)
        ctx = Context(db, run_id, PROFILE, options, Engine(limits_for(PROFILE, options)), [])
        async with listener:
            await transfer(ctx, ZoneState("kp", None), "ns.test", "127.0.0.1")

    asyncio.run(main())
    row = next(db["axfr_attempts"].rows)
    return row, db["dns_records"].count


def test_a_good_transfer(tmp_path) -> None:
    row, stored = run_transfer(TransferServer(), tmp_path)
    assert (row["outcome"], row["records"], row["soa_serial"]) == ("success", 6, 2013083001)
    assert stored == 6


def test_garbage_mid_transfer(tmp_path) -> None:
    row, stored = run_transfer(GarbageMidTransfer(), tmp_path)
    assert row["outcome"] == Outcome.ERROR
    assert "malformed message 2" in row["error"]
    assert stored == 0


def test_halfway_close(tmp_path) -> None:
    row, stored = run_transfer(HalfwayClose(), tmp_path)
    assert row["outcome"] == Outcome.ERROR
    assert "stopped halfway after 4 records" in row["error"]
    assert stored == 0


def test_silent_after_first_message_times_out(tmp_path) -> None:
    started = time.monotonic()
    row, stored = run_transfer(SilentAfterFirst(), tmp_path)
    assert row["outcome"] == Outcome.TIMEOUT
    assert time.monotonic() - started < 3
    assert stored == 0


def test_nothing_listening(tmp_path) -> None:
    db = open_census(tmp_path / "census.db")
    run_id = start_run(db, "kp", {})
    options = ProbeOptions(ns_port=free_port(), timeout=0.5, allow_net=("127.0.0.0/8",))
    ctx = Context(db, run_id, PROFILE, options, Engine(), [])
    asyncio.run(transfer(ctx, ZoneState("kp", None), "ns.test", "127.0.0.1"))
    assert next(db["axfr_attempts"].rows)["outcome"] == Outcome.ERROR


def test_unroutable_nameservers_are_not_contacted(tmp_path) -> None:
    db = open_census(tmp_path / "census.db")
    run_id = start_run(db, "kp", {})
    ctx = Context(db, run_id, PROFILE, ProbeOptions(), Engine(), [])
    asyncio.run(transfer(ctx, ZoneState("kp", None), "ns.test", "10.0.0.1"))
    row = next(db["axfr_attempts"].rows)
    assert row["outcome"] == Outcome.ERROR and row["error"].startswith("skipped")


@pytest.fixture
def dead_resolver() -> Iterator[tuple[str, int]]:
    """A bound UDP socket nobody reads: queries go in, nothing comes out."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()
    sock.close()


def test_dead_resolver_ends_within_the_bound_and_says_nothing_answered(
    tmp_path, dead_resolver
) -> None:
    db = open_census(tmp_path / "census.db")
    run_id = start_run(db, "kp", {})
    profile = Profile(zone="kp", suffixes=("com", "org"), ranges=("127.45.176.0/28",))
    options = ProbeOptions(resolvers=(dead_resolver,), timeout=0.3, retries=1,
                           wordlist=("kcna", "naenara"), extra_names=("kcna.kp",))
    limits = limits_for(profile, options)
    bound = limits.give_up_seconds()
    started = time.monotonic()
    result = probe_run(db, run_id, profile, options)
    elapsed = time.monotonic() - started
    assert elapsed < bound + 0.5, (elapsed, bound)
    assert result.status == "failed"
    assert result.message.startswith("nothing answered")
    assert result.answered == 0 and result.timeouts >= 3
    assert db["domains"].count == 0


def test_engine_outcomes_are_values(dead_resolver) -> None:
    engine = Engine(Limits(timeout=0.2, retries=0))

    async def main() -> list[Rcode]:
        return [
            (await engine.query(dead_resolver, "kcna.kp", "A")).rcode for _ in range(4)
        ]

    assert asyncio.run(main()) == [Rcode.TIMEOUT] * 4
    assert engine.silent_servers() == [dead_resolver]
    assert engine.servers[dead_resolver].queries == 3, "the fourth query was not sent"


def test_limits_bound_one_query_and_a_dead_server() -> None:
    limits = Limits(timeout=3.0, retries=2, backoff=0.25)
    assert limits.worst_query_seconds() == 9.75
    assert limits.give_up_seconds() == 32.25



@pytest.fixture
def nxdomain_resolver() -> Iterator[tuple[str, int]]:
    """A filtering resolver: every question gets NXDOMAIN (as on locked-down networks)."""
    import threading

    import dns.message
    import dns.rcode

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            reply = dns.message.make_response(dns.message.from_wire(data))
            reply.set_rcode(dns.rcode.NXDOMAIN)
            sock.sendto(reply.to_wire(), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()
    stop.set()
    thread.join()
    sock.close()


def test_a_resolver_that_denies_the_zone_fails_the_run_and_says_what_to_try(
    tmp_path, nxdomain_resolver
) -> None:
    from click.testing import CliRunner

    from crawler.cli import cli

    host, port = nxdomain_resolver
    db = tmp_path / "census.db"
    result = CliRunner().invoke(
        cli, ["run", "kp", "--db", str(db), "--out", str(tmp_path), "--resolver",
              f"{host}:{port}", "--timeout", "0.3", "--no-wordlist"],
    )
    assert result.exit_code == 1, result.output
    assert "failed, 0 domains" in result.output
    assert f"the resolver ({host}:{port}) answered NXDOMAIN for kp" in result.output
    assert "--resolver" in result.output.split("NXDOMAIN", 1)[1]
    assert "complete" not in result.output
