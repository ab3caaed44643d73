"""The fast path of the record phase and the sweeps (``Engine.flight``) against the reference path.

The reference is what the record phase did before: one ``Engine.sweep`` per question (its own
coroutine, replies without answers read from the header, the others parsed by dnspython), each
answer's RRsets turned into ``dns_records`` rows.  (``Engine.query``, all dnspython, agrees
with ``Engine.sweep`` on servers that behave: ``test_sweep.py``.)  Against the lab resolver,
against Knot serving awkward records, and against a server that drops, delays, duplicates,
spoofs and corrupts its answers, both paths must store the same rows and come to the same
outcomes; the fast path must also keep the window and the pace.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import struct
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.rcode
import dns.rrset
import pytest

from crawler.db import open_census, start_run
from crawler.lab.knot import Knot, free_port, knot_available
from crawler.probe.context import Context
from crawler.probe.engine import Engine, Limits, Rcode, bounded
from crawler.probe.options import ProbeOptions
from crawler.probe.records import HOSTS, TYPES, collect_records, store_answer
from crawler.probe.replies import Reply, message_records
from crawler.profiles import Profile, load_profile
from tests.probe.test_knot import zone

Server = tuple[str, int]


def context(path: Path, resolver: Server, limits: Limits) -> Context:
    db = open_census(path)
    run_id = start_run(db, "kp", {})
    return Context(db, run_id, Profile(zone="kp"), ProbeOptions(resolvers=(resolver,)),
                   Engine(limits), [resolver])


async def reference_records(ctx: Context, domains: list[str]) -> None:
    """The record phase as it was: a coroutine and an ``Engine.sweep`` per question."""
    questions = [(host + d, t) for d in domains for host in HOSTS for t in TYPES]

    async def ask(question: tuple[str, str]):
        return await ctx.engine.sweep(ctx.resolver_for(question[0]), *question)

    with ctx.db.atomic(), ctx.engine.sweeping():
        async for _, answer in bounded(questions, ask, ctx.workers):
            store_answer(ctx, answer)


class QueryFlight:
    """``Engine.flight`` on ``Engine.query`` (dnspython, a coroutine per question): the
    reference a test puts in its place with ``monkeypatch.setattr(Engine, "flight", ...)``
    (through a function: a class is not bound as a method)."""

    def __init__(self, engine: Engine, questions, *, recurse: bool = True,
                 dnssec: bool = False) -> None:
        self.engine, self.questions = engine, list(questions)
        self.options = {"recurse": recurse, "dnssec": dnssec}

    async def __aenter__(self) -> QueryFlight:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def __aiter__(self):
        async def ask(question):
            return await self.engine.query(*question, **self.options)

        workers = self.engine.limits.queries_in_flight
        async for _, a in bounded(self.questions, ask, workers):
            records = message_records(a.response) if a.response is not None else []
            yield [Reply(a.server, a.qname, a.rdtype, a.rcode, records, a.answered, a.error)]


def stored(ctx: Context) -> list[tuple]:
    return ctx.db.execute("SELECT name, type, ttl, value, source FROM dns_records "
                          "ORDER BY 1, 2, 3, 4, 5").fetchall()


def both_paths(tmp_path: Path, resolver: Server, domains: list[str],
               limits: Limits) -> tuple[Context, Context]:
    fast = context(tmp_path / "fast.db", resolver, limits)
    reference = context(tmp_path / "reference.db", resolver, limits)
    asyncio.run(collect_records(fast, domains))
    asyncio.run(reference_records(reference, domains))
    return fast, reference


def test_lab_records_are_the_reference_rows(lab_dns, tmp_path) -> None:
    domains = sorted({seed.name for seed in load_profile("kp").seeds} | {"nosuchname.kp"})
    limits = Limits(queries_in_flight=16, queries_per_second=0, timeout=3.0, retries=2)
    fast, reference = both_paths(tmp_path, lab_dns.resolver, domains, limits)
    rows = stored(fast)
    assert rows == stored(reference)
    assert {"A", "MX", "TXT", "NS", "SOA"} <= {row[1] for row in rows}
    assert fast.engine.timeouts == reference.engine.timeouts == 0
    assert fast.engine.answered == reference.engine.answered == len(domains) * 24


ODD = zone("kp", """
@ NS ns1.kptc.kp.
ns1.kptc A 127.0.0.1
kcna A 127.0.0.10
kcna A 127.0.0.12
kcna AAAA 2001:db8::10
kcna MX 10 mail.kcna.kp.
kcna MX 20 MAIL2.kcna.kp.
kcna TXT "v=spf1 -all"
kcna TXT "two" "strings with \\"quotes\\" and \\\\ and \\010"
kcna TXT "A"
kcna TXT "a"
kcna CAA 0 issue "letsencrypt.org"
kcna CAA 128 tbs "Unknown"
www.kcna CNAME kcna.kp.
mail.kcna CNAME gone.kcna.kp.
rodong NS ns.rodong.kp.
ns.rodong A 127.0.0.30
Upper A 127.0.0.40
upper TXT "case"
""")


@pytest.fixture(scope="module")
def odd_knot() -> Iterator[Server]:
    if not knot_available():
        pytest.skip("no knotd")
    port = free_port(("127.0.0.2",))
    with tempfile.TemporaryDirectory() as tmp, Knot(Path(tmp), "127.0.0.2", port, {"kp": ODD}):
        yield ("127.0.0.2", port)


@pytest.mark.knot
def test_knot_awkward_records_are_the_reference_rows(odd_knot, tmp_path) -> None:
    """Several records per RRset, case-only differences, CNAME chains, a referral, CAA."""
    domains = ["kcna.kp", "rodong.kp", "upper.kp", "nosuchname.kp"]
    limits = Limits(queries_in_flight=32, queries_per_second=0, timeout=3.0, retries=1)
    fast, reference = both_paths(tmp_path, odd_knot, domains, limits)
    rows = stored(fast)
    assert rows == stored(reference)
    values = {(name, kind): value for name, kind, _, value, _ in rows}
    assert values[("www.kcna.kp", "CNAME")] == "kcna.kp."
    assert values[("kcna.kp", "CAA")] in {'0 issue "letsencrypt.org"', '128 tbs "Unknown"'}
    assert {v for n, k, _, v, _ in rows if (n, k) == ("kcna.kp", "TXT")} >= {'"A"', '"a"'}


class Faulty(asyncio.DatagramProtocol):
    """A server whose faults are chosen by the first label of the name asked.

    ``drop``: the first query of each name and type gets nothing; ``late``: its reply comes
    after 0.4 s; ``dup``: every reply is sent twice; ``spoof``: a reply with another ID (and
    one with another question) comes first; ``torn``: the reply loses its last 7 bytes;
    ``junk``: the reply has trailing bytes; ``nx``: NXDOMAIN.  Every name has an A
    (two records with different TTLs), an MX and a TXT.  It also counts queries waiting for
    their reply, to check the window.
    """

    def __init__(self, delay: float = 0.0) -> None:
        self.seen: dict[tuple[str, int], int] = {}
        self.delay = delay
        self.waiting = 0
        self.most_waiting = 0
        self.times: list[float] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        question = query.question[0]
        key = (question.name.to_text(), question.rdtype)
        count = self.seen[key] = self.seen.get(key, 0) + 1
        self.times.append(time.monotonic())
        fault = question.name.labels[0].decode().rstrip("0123456789")
        if fault == "drop" and count == 1:
            return
        wire = self.reply(query, fault)
        sends = [wire]
        if fault == "dup":
            sends.append(wire)
        elif fault == "spoof":
            other = dns.message.make_query("evil.kp", question.rdtype)
            other.id = query.id
            sends[:0] = [struct.pack("!H", (query.id + 1) % 65536) + wire[2:],
                         dns.message.make_response(other).to_wire()]
        elif fault == "torn":
            sends = [wire[:-7]]
        elif fault == "junk":
            sends = [wire + b"\0\0"]
        delay = 0.4 if fault == "late" and count == 1 else self.delay
        self.waiting += 1
        self.most_waiting = max(self.most_waiting, self.waiting)
        asyncio.get_running_loop().call_later(delay, self.send, sends, addr)

    def send(self, sends: list[bytes], addr: tuple[str, int]) -> None:
        self.waiting -= 1
        for wire in sends:
            self.transport.sendto(wire, addr)

    @staticmethod
    def reply(query: dns.message.Message, fault: str) -> bytes:
        response = dns.message.make_response(query)
        name = query.question[0].name
        if fault == "nx":
            response.set_rcode(dns.rcode.NXDOMAIN)
            return response.to_wire()
        kind = dns.rdatatype.to_text(query.question[0].rdtype)
        records = {"A": [(300, "10.0.0.1"), (60, "10.0.0.2")],
                   "MX": [(300, f"10 mail.{name}")], "TXT": [(300, f'"{fault}"')]}
        for ttl, value in records.get(kind, []):
            response.answer.append(dns.rrset.from_text(name, ttl, "IN", kind, value))
        return response.to_wire()


def run_with(server_factory, work):
    """Run ``work(server_address, protocol)`` with a fresh server on loopback."""
    async def main():
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(
            server_factory, local_addr=("127.0.0.1", 0))
        try:
            return await work(transport.get_extra_info("sockname")[:2], protocol)
        finally:
            transport.close()

    return asyncio.run(main())


FAULTS = ["drop", "late", "dup", "spoof", "torn", "junk", "nx", "fine"]


def test_a_faulty_server_gives_both_paths_the_same_outcomes() -> None:
    questions = [(f"{fault}{i}.kp", t) for fault in FAULTS for i in range(3)
                 for t in ("A", "MX", "TXT", "AAAA")]
    limits = Limits(queries_in_flight=16, queries_per_second=0, timeout=0.3, retries=2,
                    backoff=0.05, dead_after=1000)  # the torn and junk errors in a row
    seen = {}
    for fast in (True, False):
        async def work(server, protocol, fast=fast):
            engine = Engine(limits)
            if fast:
                async with engine.flight((server, n, t) for n, t in questions) as flight:
                    replies = [r async for batch in flight for r in batch]
                    ignored = flight.ignored
                got = [(r.qname, r.rdtype, r.rcode, r.answered, sorted(r.records))
                       for r in replies]
            else:
                got = []
                with engine.sweeping():
                    async for _, a in bounded(questions, lambda q: engine.sweep(server, *q), 16):
                        got.append((a.qname, a.rdtype, a.rcode, a.answered,
                                    sorted(message_records(a.response)) if a.response else []))
                    ignored = engine.channels[server][1].result().ignored
            return sorted(got), engine.timeouts, ignored

        seen[fast] = run_with(Faulty, work)
    (fast, fast_timeouts, ignored), (reference, reference_timeouts, _) = seen[True], seen[False]
    assert fast == reference
    assert fast_timeouts == reference_timeouts == 3 * 4 * 2  # drop and late: one try each
    by_fault = {}
    for name, kind, rcode, answered, records in fast:
        fault = name.split(".")[0].rstrip("0123456789")
        by_fault.setdefault(fault, set()).add((kind, rcode, answered))
        if name.startswith(("drop", "late", "dup", "spoof", "fine")) and kind == "A":
            assert records == [(name, "A", 60, "10.0.0.1"), (name, "A", 60, "10.0.0.2")]
    for fault in ("torn", "junk"):
        assert by_fault[fault] == {(k, Rcode.ERROR, False) for k in ("A", "MX", "TXT")} | {
            ("AAAA", Rcode.NODATA, True)}
    assert by_fault["nx"] == {(k, Rcode.NXDOMAIN, True) for k in ("A", "MX", "TXT", "AAAA")}
    # a duplicate and two spoofs per dup/spoof question (late replies: if the flight is open)
    assert ignored >= 3 * 4 * 3


def test_the_window_and_the_pace_hold() -> None:
    names = [(f"fine{i}.kp", "A") for i in range(60)]

    async def work(server, protocol, limits):
        engine = Engine(limits)
        started = time.monotonic()
        async with engine.flight((server, n, t) for n, t in names) as flight:
            replies = [r async for batch in flight for r in batch]
        return replies, time.monotonic() - started, protocol

    window = Limits(queries_in_flight=6, queries_per_second=0, timeout=2.0)
    replies, elapsed, server = run_with(lambda: Faulty(delay=0.05),
                                        lambda s, p: work(s, p, window))
    assert {r.rcode for r in replies} == {Rcode.NOERROR} and len(replies) == 60
    assert server.most_waiting == 6 and elapsed >= 10 * 0.05

    paced = Limits(queries_in_flight=50, queries_per_second=100, timeout=2.0)
    replies, elapsed, server = run_with(Faulty, lambda s, p: work(s, p, paced))
    assert len(replies) == 60 and elapsed >= 0.55
    gaps = [b - a for a, b in zip(server.times, server.times[1:], strict=False)]
    assert sum(gaps) / len(gaps) >= 0.009


def test_a_dead_server_is_given_up_by_the_same_rule() -> None:
    """Four in flight time out twice each; the server is given up at the third failure and
    the questions still waiting are answered "server given up" without a query."""
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    server = silent.getsockname()
    engine = Engine(Limits(queries_in_flight=4, queries_per_second=0, timeout=0.2, retries=1,
                           backoff=0.05, dead_after=3))

    async def main() -> list:
        async with engine.flight((server, f"n{i}.kp", "A") for i in range(20)) as flight:
            return [r async for batch in flight for r in batch]

    thresholds = gc.get_threshold()
    try:
        started = time.monotonic()
        replies = asyncio.run(main())
        elapsed = time.monotonic() - started
    finally:
        silent.close()
    assert [r.rcode for r in replies] == [Rcode.TIMEOUT] * 20
    assert sorted(r.error for r in replies) == ["server given up"] * 16 + ["timed out"] * 4
    state = engine.servers[server]
    assert (state.queries, state.timeouts, state.dead) == (8, 8, True)
    assert engine.silent_servers() == [server] and elapsed < 1.5
    assert gc.get_threshold() == thresholds  # the flight's own are put back


def test_a_name_that_is_no_name_is_an_error_not_a_crash() -> None:
    questions = ["fine1.kp", "a..kp", "x" * 64 + ".kp", "fine2.kp"]

    async def work(server, protocol):
        async with Engine(Limits(timeout=1.0)).flight(
                (server, name, "A") for name in questions) as flight:
            return {r.qname: (r.rcode, r.error) async for batch in flight for r in batch}

    got = run_with(Faulty, work)
    assert got["a..kp"] == (Rcode.ERROR, "EmptyLabel: A DNS label is empty.")
    assert got["x" * 64 + ".kp"][0] == Rcode.ERROR
    assert got["fine1.kp"] == got["fine2.kp"] == (Rcode.NOERROR, None)
