"""The AXFR parser and store, fed message by message with no socket."""

from __future__ import annotations

import io
import struct

import dns.message
import dns.rdatatype
import dns.rrset
import pytest

from crawler.db import open_census, start_run
from crawler.errors import TransferError
from crawler.probe.axfr import AxfrParser, _ends_with_soa, spool_messages, store_spool

SOA = "ns1.kptc.kp. root.kptc.kp. 2013083001 3600 600 86400 3600"
ZONE = [
    ("kp", "SOA", SOA),
    ("kp", "NS", "ns1.kptc.kp."),
    ("ns1.kptc.kp", "A", "127.0.0.1"),
    ("kcna.kp", "A", "127.0.0.10"),
    ("kcna.kp", "MX", "10 mail.kcna.kp."),
    ("com.kp", "NS", "ns1.kptc.kp."),
    ("kp", "SOA", SOA),
]
GLUE = [*ZONE[:-1], ("ns.a.com.kp", "A", "127.0.0.9"), ("b.c.kcna.kp", "TXT", '"x"'), ZONE[-1]]
"""ZONE with a glue name below the com.kp cut and a deep name of the zone."""


def messages(records: list[tuple[str, str, str]], per_message: int = 3) -> list[bytes]:
    """The wire messages of a transfer of ``records``, ``per_message`` RRs in each."""
    query = dns.message.make_query("kp", "AXFR")
    out = []
    for start in range(0, len(records), per_message):
        response = dns.message.make_response(query)
        for name, rdtype, value in records[start : start + per_message]:
            response.answer.append(dns.rrset.from_text(name + ".", 3600, "IN", rdtype, value))
        out.append(response.to_wire())
    return out


def spool(wires: list[bytes]) -> io.BytesIO:
    return io.BytesIO(b"".join(struct.pack("!H", len(w)) + w for w in wires))


def feed_all(wires: list[bytes]) -> AxfrParser:
    parser = AxfrParser("kp")
    for wire in wires:
        parser.feed(wire)
    parser.finish()
    return parser


@pytest.mark.parametrize("per_message", [1, 3, 100])
def test_a_whole_transfer_in_any_number_of_messages(per_message: int) -> None:
    parser = feed_all(messages(ZONE, per_message))
    assert (parser.records, parser.serial, parser.mname) == (6, 2013083001, "ns1.kptc.kp")


def test_records_come_out_as_text() -> None:
    parser = AxfrParser("kp")
    records = [r for wire in messages(ZONE, 100) for r in parser.feed(wire)]
    assert ("kcna.kp", "MX", "10 mail.kcna.kp.") in {(r[0], r[1], r[3]) for r in records}
    assert records[0][1] == "SOA" and len(records) == 6


def test_a_transfer_that_stops_halfway() -> None:
    parser = AxfrParser("kp")
    for wire in messages(ZONE[:4], 2):
        parser.feed(wire)
    with pytest.raises(TransferError, match="stopped halfway after 4 records"):
        parser.finish()


def test_garbage_in_the_middle() -> None:
    wires = messages(ZONE, 2)
    wires[1] = wires[1][:12] + b"\xff" * 40
    parser = AxfrParser("kp")
    parser.feed(wires[0])
    with pytest.raises(TransferError, match="malformed message 2 after 2 records"):
        parser.feed(wires[1])


def test_a_transfer_must_start_with_the_soa() -> None:
    with pytest.raises(TransferError, match="does not start with SOA"):
        feed_all(messages(ZONE[1:], 3))


def test_the_closing_soa_must_match() -> None:
    other = [*ZONE[:-1], ("kp", "SOA", SOA.replace("2013083001", "2013083002"))]
    with pytest.raises(TransferError, match="closing SOA serial"):
        feed_all(messages(other))


def test_records_outside_the_zone_are_dropped() -> None:
    hostile = [*ZONE[:-1], ("evil.example", "A", "10.0.0.1"), ZONE[-1]]
    parser = feed_all(messages(hostile))
    assert (parser.records, parser.dropped) == (6, 1)


def test_end_of_zone_seen_from_the_tail_of_a_message() -> None:
    wires = messages(ZONE, 3)
    assert [_ends_with_soa(w) for w in wires] == [False, False, True]


def test_a_torn_spool_ends_the_messages() -> None:
    data = spool(messages(ZONE, 3)).getvalue()
    assert len(list(spool_messages(io.BytesIO(data[:-5])))) == 2


def test_store_keeps_a_good_transfer_and_nothing_of_a_bad_one(tmp_path) -> None:
    db = open_census(tmp_path / "census.db")
    run_id = start_run(db, "kp", {})
    parser = store_spool(db, run_id, "kp", spool(messages(ZONE, 2)), "axfr:kp@127.0.0.2")
    assert parser.records == 6
    assert db["dns_records"].count_where("source = 'axfr:kp@127.0.0.2'") == 6
    with pytest.raises(TransferError):
        store_spool(db, run_id, "kp", spool(messages(ZONE[:5], 2)), "axfr:kp@127.0.0.3")
    assert db["dns_records"].count_where("source = 'axfr:kp@127.0.0.3'") == 0


def test_types_survive_the_round_trip() -> None:
    parser = AxfrParser("kp")
    types = {r[1] for w in messages(ZONE, 100) for r in parser.feed(w)}
    assert types == {dns.rdatatype.to_text(t) for t in (6, 2, 1, 15)}


@pytest.mark.parametrize("fork", [False, True])
def test_a_forked_parser_stores_and_sights_what_the_inline_one_does(tmp_path, fork) -> None:
    db = open_census(tmp_path / "census.db")
    run_id = start_run(db, "kp", {})
    seen: list[str] = []

    def sight(names: list[str]) -> None:
        seen.extend(names)
        db.conn.executemany("INSERT INTO runs (zone, status) VALUES (?, 'seen')",
                            [(n,) for n in names])

    parser = store_spool(db, run_id, "kp", spool(messages(ZONE, 2)), "axfr", sight=sight,
                         fork=fork)
    assert (parser.records, parser.serial, parser.rname) == (6, 2013083001, "root.kptc.kp")
    assert seen == ["kp", "kcna.kp", "com.kp"]  # shallow owners, while storing
    assert parser.deep_names() == ["ns1.kptc.kp"]
    assert (len(parser.cuts) if not fork else parser.cut_count) == 1
    rows = db.execute("SELECT name, type, value FROM dns_records ORDER BY rowid").fetchall()
    assert rows[-1] == ("com.kp", "NS", "ns1.kptc.kp.") and len(rows) == 6
    deep = store_spool(db, run_id, "kp", spool(messages(GLUE, 2)), "glue", fork=fork)
    assert deep.deep_names() == ["ns1.kptc.kp", "b.c.kcna.kp"], "no glue below com.kp"
    with pytest.raises(TransferError, match="stopped halfway after 5 records"):
        store_spool(db, run_id, "kp", spool(messages(ZONE[:5], 2)), "bad", sight=sight,
                    fork=fork)
    assert db["dns_records"].count_where("source = 'bad'") == 0
    assert db["runs"].count_where("status = 'seen'") == 3, "the bad transfer's sightings too"
