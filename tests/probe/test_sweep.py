"""The sweep fast path (``Engine.sweep``) against ``Engine.query``: same outcomes, same finds.

Against the lab and a real Knot, every outcome and every sighting of the wordlist and PTR
sweeps is compared with the dnspython path; tiny fault servers show a dead server times out
and is given up by the same rule, and that wrong IDs and spoofed questions are ignored.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Iterator

import dns.message
import dns.rrset
import pytest

from crawler.db import open_census, start_run
from crawler.lab.knot import Knot, free_port, knot_available
from crawler.probe.context import Context, limits_for
from crawler.probe.engine import Answer, Engine, Limits, Rcode
from crawler.probe.options import ProbeOptions
from crawler.probe.ptr import ptr_sweep
from crawler.probe.wordlist import wordlist_sweep
from crawler.profiles import load_profile, read_wordlist
from tests.probe.test_flight import QueryFlight
from tests.probe.test_knot import ZONES

FAST = Limits(queries_in_flight=16, queries_per_second=0, timeout=1.0, retries=1)


def outcome(answer: Answer) -> tuple:
    values = sorted((r.rdtype, rd.to_text()) for r in answer.rrsets() for rd in r)
    return answer.rcode, answer.answered, values


def both(questions: list[tuple[tuple[str, int], str, str]], **kw: bool) -> tuple[list, list]:
    """Each question asked by ``Engine.query`` and by ``Engine.sweep``."""
    async def main(fast: bool) -> list:
        engine = Engine(FAST)
        ask = engine.sweep if fast else engine.query
        with engine.sweeping():
            return [outcome(await ask(server, name, rdtype, **kw))
                    for server, name, rdtype in questions]

    return asyncio.run(main(False)), asyncio.run(main(True))


def test_lab_outcomes_are_the_same(lab_dns) -> None:
    port = lab_dns.port
    questions = [
        (lab_dns.resolver, "kcna.kp", "A"),
        (lab_dns.resolver, "nosuchname.com.kp", "A"),
        (lab_dns.resolver, "friend.com.kp", "MX"),
        (lab_dns.resolver, "10.176.45.127.in-addr.arpa", "PTR"),
        (("127.45.179.1", port), "kp", "SOA"),
        (("127.45.176.17", port), "aca.kp", "SOA"),
    ]
    slow, fast = both(questions)
    assert fast == slow
    assert [o[0] for o in fast[1:3]] == [Rcode.NXDOMAIN, Rcode.NODATA]
    assert {o[0] for o in fast} >= {Rcode.SERVFAIL, Rcode.REFUSED, Rcode.NOERROR}


def test_truncation_goes_to_tcp(lab_dns) -> None:
    slow, fast = both([(("127.45.176.18", lab_dns.port), "sca.kp", "SOA")], recurse=False)
    assert fast == slow and fast[0][0] == Rcode.NOERROR


def test_lab_sweeps_find_the_same(lab_dns, tmp_path, monkeypatch) -> None:
    """Wordlist (with the wildcard zone) and PTR over 127.45.176.0/22, by the flight and by
    ``Engine.query`` in its place.

    Timeouts generous enough that the lab's Python server, on a loaded machine, answers
    everything: the paths are compared on answers, not on how each copes with loss.
    """
    tables = []
    for fast in (True, False):
        if not fast:
            monkeypatch.setattr(Engine, "flight", lambda engine, questions, **kw: QueryFlight(
                engine, questions, **kw))
        db = open_census(tmp_path / f"{fast}.db")
        run_id = start_run(db, "kp", {})
        options = ProbeOptions(resolvers=(lab_dns.resolver,), ns_port=lab_dns.port,
                               allow_net=("127.0.0.0/8",), timeout=3.0, retries=2,
                               queries_per_second=5000, queries_in_flight=16)
        profile = load_profile("kp")
        ctx = Context(db, run_id, profile, options, Engine(limits_for(profile, options)),
                      [lab_dns.resolver])

        async def main(ctx: Context = ctx, profile=profile) -> tuple[int, int]:
            return (await wordlist_sweep(ctx, read_wordlist(profile)),
                    await ptr_sweep(ctx, ("127.45.176.0/22",)))

        found = asyncio.run(main())
        tables.append((found, ctx.engine.timeouts,
                       db.execute("SELECT name, domain, method, source FROM sightings "
                                  "ORDER BY 1, 2, 3, 4").fetchall(),
                       db.execute("SELECT name, type, ttl, value, source FROM dns_records "
                                  "ORDER BY 1, 2, 3, 4, 5").fetchall(),
                       db.execute("SELECT zone, wildcard, wildcard_answers FROM zones "
                                  "ORDER BY 1").fetchall()))
    assert tables[0] == tables[1]
    found, timeouts, sightings, records, _ = tables[0]
    assert found[0] > 5 and found[1] > 0 and timeouts == 0
    assert {"ptr", "wordlist"} == {row[2] for row in sightings}
    assert records


@pytest.fixture(scope="module")
def knot() -> Iterator[int]:
    if not knot_available():
        pytest.skip("no knotd")
    port = free_port(("127.0.0.2",))
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp, Knot(Path(tmp), "127.0.0.2", port, ZONES):
        yield port


@pytest.mark.knot
def test_knot_outcomes_are_the_same(knot: int) -> None:
    server = ("127.0.0.2", knot)
    questions = [(server, name, rdtype) for name, rdtype in [
        ("kcna.kp", "A"), ("kcna.kp", "MX"), ("kcna.kp", "TXT"), ("kcna.kp", "AAAA"),
        ("nosuchname.kp", "A"), ("anything.tra.kp", "A"), ("airkoryo.com.kp", "A"),
        ("com.kp", "A"), ("20.0.0.127.in-addr.arpa", "PTR"), ("example.org", "A"),
        ("KCNA.KP.", "A"),
    ]]
    slow, fast = both(questions, recurse=False)
    assert fast == slow
    assert Rcode.REFUSED in {o[0] for o in fast} and Rcode.NXDOMAIN in {o[0] for o in fast}


@pytest.fixture
def dead_server() -> Iterator[tuple[str, int]]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()
    sock.close()


def test_a_dead_server_times_out_and_is_given_up_by_the_same_rule(dead_server) -> None:
    engine = Engine(Limits(timeout=0.2, retries=1, backoff=0.05))

    async def main() -> list[Rcode]:
        with engine.sweeping():
            return [(await engine.sweep(dead_server, "kcna.kp", "A")).rcode for _ in range(4)]

    assert asyncio.run(main()) == [Rcode.TIMEOUT] * 4
    state = engine.servers[dead_server]
    assert (state.queries, state.timeouts, state.dead) == (6, 6, True), "4th never sent"
    assert engine.silent_servers() == [dead_server]


class Spoofer(asyncio.DatagramProtocol):
    """Answers each query first with a wrong ID, then with a wrong question, then maybe truly."""

    def __init__(self, honest: bool) -> None:
        self.honest = honest

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        lie = dns.message.make_response(query)
        lie.answer.append(dns.rrset.from_text(query.question[0].name, 60, "IN", "A", "6.6.6.6"))
        wire = lie.to_wire()
        wrong_id = struct.pack("!H", (query.id + 1) % 65536) + wire[2:]
        other = dns.message.make_query("evil.kp", "A")
        other.id = query.id
        wrong_question = dns.message.make_response(other)
        wrong_question.answer.append(dns.rrset.from_text("evil.kp.", 60, "IN", "A", "6.6.6.6"))
        self.transport.sendto(wrong_id, addr)
        self.transport.sendto(wrong_question.to_wire(), addr)
        if self.honest:
            truth = dns.message.make_response(query)
            truth.set_rcode(dns.rcode.NXDOMAIN)
            self.transport.sendto(truth.to_wire(), addr)


@pytest.mark.parametrize("honest", [True, False])
def test_wrong_ids_and_spoofed_questions_are_ignored(honest: bool) -> None:
    engine = Engine(Limits(timeout=0.3, retries=0))

    async def main() -> tuple[Answer, int]:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: Spoofer(honest), local_addr=("127.0.0.1", 0))
        server = transport.get_extra_info("sockname")[:2]
        try:
            with engine.sweeping():
                answer = await engine.sweep(server, "kcna.kp", "A")
                _, opening = engine.channels[server]
                return answer, opening.result().ignored
        finally:
            transport.close()

    answer, ignored = asyncio.run(main())
    assert answer.rcode == (Rcode.NXDOMAIN if honest else Rcode.TIMEOUT)
    assert ignored == 2 and not answer.values("A")
