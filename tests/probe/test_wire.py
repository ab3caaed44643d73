"""The fast AXFR reader gives exactly what dnspython gives, or hands the message to dnspython.

The invariant under test: whenever :func:`read_answers` accepts a message, dnspython accepts it
too and reads the same records; whenever it does not, the parser's outcome is dnspython's by
construction.  So every spool -- lab zones, Knot transfers, a zone of every type, hostile
bytes -- is parsed both ways and the rows, counts, serials and errors compared.
"""

from __future__ import annotations

import asyncio
import functools
import io
import random
import struct

import pytest

from crawler.db import open_census, start_run
from crawler.errors import TransferError
from crawler.lab.knot import Knot, free_port, knot_available
from crawler.probe.axfr import (
    AxfrParser,
    drain,
    reference_answers,
    spool_messages,
    store_spool,
)
from crawler.probe.context import Context, limits_for
from crawler.probe.engine import Engine
from crawler.probe.options import ProbeOptions
from crawler.probe.wire import Unusual, read_answers
from crawler.probe.zones import enumerate_zones
from crawler.profiles import load_profile
from tests.probe.test_axfr import SOA, ZONE, messages, spool

EVERY_TYPE = [
    ("kp", "SOA", SOA),
    ("kp", "NS", "ns1.kptc.kp."),
    ("kp", "NS", "."),
    ("ns1.kptc.kp", "A", "127.0.0.1"),
    ("v6.kp", "AAAA", "2001:db8::1"),
    ("v6.kp", "AAAA", "::ffff:192.0.2.1"),
    ("v6.kp", "AAAA", "::"),
    ("v6.kp", "AAAA", "2001:db8:0:0:1:0:0:1"),
    ("v6.kp", "AAAA", "fe80:0:0:1::"),
    ("www.KCNA.kp", "CNAME", "KCNA.kp."),
    ("kcna.kp", "MX", "10 mail.kcna.kp."),
    ("kcna.kp", "MX", "0 ."),
    ("kcna.kp", "TXT", '"v=spf1 -all"'),
    ("kcna.kp", "TXT", '"two" "strings" ""'),
    ("kcna.kp", "TXT", r'"quote\" back\\ semi; \007 \200 \195\169 (x) @$"'),
    ("20.0.kp", "PTR", "airkoryo.com.kp."),
    ("old.kp", "DNAME", "new.kp."),
    (r"odd\.label.kp", "A", "127.0.0.2"),
    (r"sp\032ace.\(par\).kp", "A", "127.0.0.3"),
    (r"at\@sign\$.\200\000.kp", "NS", r"ns\.x.kp."),
    ("*.wild.kp", "A", "127.0.0.99"),
    ("_sip._tcp.kp", "SRV", "0 5 5060 sip.kp."),
    ("kcna.kp", "CAA", '0 issue "letsencrypt.org"'),
    ("kcna.kp", "HINFO", '"cpu" "os"'),
    ("kcna.kp", "SSHFP", "1 1 123456789abcdef67890123456789abcdef67890"),
    ("kcna.kp", "NAPTR", '100 10 "u" "E2U+sip" "!^.*$!sip:a@kp!" .'),
    ("kcna.kp", "TYPE65534", r"\# 3 010203"),
    ("rep.kp", "DS", "60485 5 1 2bb183af5f22588179a53b0a98631fad1a292118"),
    ("evil.example", "A", "10.0.0.1"),
    ("kp", "SOA", SOA),
]


def agree(wire: bytes) -> bool:
    """True if the fast reader accepts ``wire``, after checking dnspython reads the same."""
    try:
        fast = read_answers(wire)
    except Unusual:
        return False
    assert reference_answers(wire) == (0, fast)
    return True


def both_ways(wires: list[bytes], zone: str = "kp") -> tuple[list, list]:
    """What each parser makes of a transfer: records, error, counts, serial, SOA names."""
    results = []
    for fast in (True, False):
        parser = AxfrParser(zone, fast)
        records, error = [], None
        try:
            for wire in wires:
                records += parser.feed(wire)
            parser.finish()
        except TransferError as exc:
            error = str(exc)
        results.append([records, error, parser.records, parser.dropped, parser.serial,
                        parser.mname, parser.rname, parser.done])
    return results[0], results[1]


@pytest.mark.parametrize("per_message", [1, 4, 100])
def test_a_zone_of_every_type_reads_the_same(per_message: int) -> None:
    wires = messages(EVERY_TYPE, per_message)
    assert all(agree(w) for w in wires), "the fast reader takes every one of these"
    fast, reference = both_ways(wires)
    assert fast == reference
    assert fast[1] is None and fast[3] == 1, "one record outside the zone dropped"


def test_stored_rows_and_rollback_are_the_same(tmp_path) -> None:
    db = open_census(tmp_path / "census.db")
    run_id = start_run(db, "kp", {})
    for fast in (True, False):
        store_spool(db, run_id, "kp", spool(messages(EVERY_TYPE, 3)), f"s{fast}", fast=fast)
        with pytest.raises(TransferError, match="stopped halfway after 4 records"):
            store_spool(db, run_id, "kp", spool(messages(ZONE[:4], 2)), f"h{fast}", fast=fast)
    rows = {
        source: db.execute("SELECT name, type, ttl, value FROM dns_records WHERE source = ? "
                           "ORDER BY id", [source]).fetchall()
        for source in ("sTrue", "sFalse", "hTrue", "hFalse")
    }
    assert rows["sTrue"] == rows["sFalse"] and len(rows["sTrue"]) == len(EVERY_TYPE) - 2
    assert rows["hTrue"] == rows["hFalse"] == []


def header(ancount: int, qdcount: int = 1, nscount: int = 0) -> bytes:
    return struct.pack("!HHHHHH", 7, 0x8400, qdcount, ancount, nscount, 0)


QUESTION = b"\x02kp\x00\x00\xfc\x00\x01"
"""``kp. AXFR IN`` at offset 12: a pointer to 12 means ``kp.``."""


def rr(owner: bytes, rdtype: int, rdata: bytes, ttl: int = 3600) -> bytes:
    return owner + struct.pack("!HHIH", rdtype, 1, ttl, len(rdata)) + rdata


HOSTILE = {
    "pointer to itself": header(0) + b"\xc0\x0c\x00\xfc\x00\x01",
    "pointer forward": header(1) + QUESTION + rr(b"\xc0\x40", 1, b"\x7f\x00\x00\x01"),
    "pointer loop": header(1) + QUESTION + rr(b"\x01a\xc0\x1e", 1, b"\x7f\0\0\1")
    + rr(b"\xc0\x14", 1, b"\x7f\0\0\1"),
    "pointer into its own name": header(1) + QUESTION + rr(b"\x01a\xc0\x14", 1, b"\1\2\3\4"),
    "chain of 16 hops": None,
    "chain of 17 hops": None,
    "label of 64": header(1) + QUESTION + rr(b"\x40" + b"a" * 64 + b"\xc0\x0c", 1, b"\1\2\3\4"),
    "name over 255": header(1) + QUESTION
    + rr((b"\x3f" + b"a" * 63) * 4 + b"\xc0\x0c", 1, b"\1\2\3\4"),
    "name of 255": header(1) + QUESTION
    + rr((b"\x3f" + b"a" * 63) * 3 + b"\x3a" + b"a" * 58 + b"\xc0\x0c", 1, b"\1\2\3\4"),
    "A of five octets": header(1) + QUESTION + rr(b"\xc0\x0c", 1, b"\1\2\3\4\5"),
    "NS with a byte after the name": header(1) + QUESTION + rr(b"\xc0\x0c", 2, b"\xc0\x0c\x00"),
    "SOA short of a number": header(1) + QUESTION + rr(b"\xc0\x0c", 6, b"\0\0" + b"\0" * 16),
    "TXT string past its rdata": header(1) + QUESTION + rr(b"\xc0\x0c", 16, b"\x05abc"),
    "TXT of nothing": header(1) + QUESTION + rr(b"\xc0\x0c", 16, b""),
    "rdata past the message": header(1) + QUESTION + b"\xc0\x0c" + struct.pack(
        "!HHIH", 1, 1, 1, 40) + b"\1\2\3\4",
    "trailing bytes": header(1) + QUESTION + rr(b"\xc0\x0c", 1, b"\1\2\3\4") + b"\0",
    "class CH": header(1) + QUESTION + b"\xc0\x0c" + struct.pack("!HHIH", 1, 3, 1, 4) + b"1234",
    "OPT in the answer": header(1) + QUESTION + rr(b"\x00", 41, b""),
    "an authority record": header(1, nscount=1) + QUESTION + rr(b"\xc0\x0c", 1, b"1234")
    + rr(b"\xc0\x0c", 1, b"1234"),
    "fewer records than counted": header(3) + QUESTION + rr(b"\xc0\x0c", 1, b"1234"),
    "MX exchange pointing into the preference": header(1) + QUESTION
    + rr(b"\xc0\x0c", 15, b"\x00\x00\xc0\x1c"),
    "huge TTL": header(1) + QUESTION + rr(b"\xc0\x0c", 1, b"1234", ttl=0xFFFFFFFF),
    # found by the atheris target (tests/fuzz): the fast reader took a compressed DNAME target
    "DNAME target compressed": header(1) + QUESTION + rr(b"\xc0\x0c", 39, b"\x03new\xc0\x0c"),
}


def chain(hops: int) -> bytes:
    """A message whose second owner is reached through ``hops`` pointers in a row.

    The first record's rdata (an unknown type, at offset 32) is a run of pointers, each to
    the one before, the first to the question's ``kp.``.
    """
    links = [12] + [32 + 2 * i for i in range(hops - 2)]
    rdata = b"".join(struct.pack("!H", 0xC000 | target) for target in links)
    owner = struct.pack("!H", 0xC000 | (32 + 2 * (hops - 2)))
    return header(2) + QUESTION + rr(b"\xc0\x0c", 65534, rdata) + rr(owner, 1, b"1234")


HOSTILE["chain of 16 hops"] = chain(16)
HOSTILE["chain of 17 hops"] = chain(17)


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_messages_read_as_dnspython_reads_them(case: str) -> None:
    wire = HOSTILE[case]
    agree(wire)
    start = messages(ZONE[:1], 1)
    fast, reference = both_ways([*start, wire, *messages(ZONE[-1:], 1)])
    assert fast == reference


def test_the_fast_reader_takes_what_it_can_and_refuses_the_rest() -> None:
    taken = {case for case, wire in HOSTILE.items() if agree(wire)}
    assert taken == {"name of 255", "huge TTL", "chain of 16 hops"}


def test_every_truncation_and_many_mutations_agree() -> None:
    wires = messages(EVERY_TYPE, 100)
    rng = random.Random(2016)
    taken = 0
    for wire in wires:
        for cut in range(len(wire)):
            agree(wire[:cut])
        for _ in range(1000):
            mutant = bytearray(wire)
            for _ in range(rng.randint(1, 3)):
                mutant[rng.randrange(12, len(mutant))] = rng.randrange(256)
            taken += agree(bytes(mutant))
    assert taken > 300, "most one-byte changes still make a readable message"


def drain_to_messages(address: str, port: int, zone: str) -> list[bytes]:
    buffer = io.BytesIO()
    asyncio.run(drain(address, port, zone, buffer, timeout=2.0, total=10.0))
    buffer.seek(0)
    return list(spool_messages(buffer))


LAB_TRANSFERS = [
    ("127.45.176.16", zone) for zone in
    ("kp", "co.kp", "com.kp", "edu.kp", "gov.kp", "net.kp", "org.kp", "rep.kp", "tra.kp")
]


def test_lab_transfers_and_faults_read_the_same(lab_dns) -> None:
    fallbacks = 0
    for address, zone in [*LAB_TRANSFERS, ("127.45.179.2", "kp")]:
        wires = drain_to_messages(address, lab_dns.port, zone)
        fast, reference = both_ways(wires, zone)
        assert fast == reference, zone
        fallbacks += sum(not agree(w) for w in wires)
    assert fallbacks == 1, "only the garbage server's message needs dnspython"


def test_the_lab_enumeration_stores_the_same_either_way(lab_dns, tmp_path, monkeypatch) -> None:
    """Transfers, sightings, zones and domains of the whole lab, fast reader vs dnspython.

    Two transfers, so rows are compared as sets: the lab rotates the order of its answers.
    """
    import crawler.probe.zones as zones

    tables = []
    for fast in (True, False):
        monkeypatch.setattr(zones, "store_spool", functools.partial(store_spool, fast=fast))
        db = open_census(tmp_path / f"{fast}.db")
        run_id = start_run(db, "kp", {})
        options = ProbeOptions(resolvers=(lab_dns.resolver,), ns_port=lab_dns.port,
                               allow_net=("127.0.0.0/8",), timeout=1.0, retries=1,
                               queries_per_second=2000, queries_in_flight=16)
        profile = load_profile("kp")
        ctx = Context(db, run_id, profile, options, Engine(limits_for(profile, options)),
                      [lab_dns.resolver])
        asyncio.run(enumerate_zones(ctx))
        tables.append({
            "dns_records": db.execute("SELECT name, type, ttl, value, source FROM dns_records "
                                      "ORDER BY 1, 2, 3, 4, 5").fetchall(),
            "sightings": db.execute("SELECT name, domain, method, source FROM sightings "
                                    "ORDER BY 1, 2, 3, 4").fetchall(),
            "zones": db.execute("SELECT zone, parent, soa_serial, soa_mname, soa_rname, "
                                "wildcard FROM zones ORDER BY zone").fetchall(),
            "axfr_attempts": db.execute("SELECT zone, ns_name, address, outcome, records, "
                                        "soa_serial, error FROM axfr_attempts "
                                        "ORDER BY 1, 2, 3").fetchall(),
            "domains": db.execute("SELECT name, suffix FROM domains ORDER BY 1").fetchall(),
        })
    assert tables[0] == tables[1]
    assert len(tables[0]["dns_records"]) > 100
    assert any(row[3] == "error" for row in tables[0]["axfr_attempts"]), "law.kp halfway"


KNOT_ZONE = """$ORIGIN kp.
$TTL 3600
@ SOA ns1.kptc.kp. root.kptc.kp. 2013083001 3600 600 86400 3600
@ NS ns1.kptc.kp.
ns1.kptc A 127.0.0.1
v6 AAAA 2001:db8::1
v6 AAAA ::ffff:192.0.2.1
www CNAME kcna
kcna MX 10 mail.kcna
kcna TXT "v=spf1 -all" "and \\"more\\"" "\\200\\007"
20.0 PTR airkoryo.com.kp.
old DNAME new.kp.
odd\\.label A 127.0.0.2
sp\\032ace 60 A 127.0.0.3
MiXeD A 127.0.0.4
* A 127.0.0.99
_sip._tcp SRV 0 5 5060 sip
kcna CAA 0 issue "letsencrypt.org"
kcna HINFO "cpu" "os"
kcna TYPE65534 \\# 3 010203
""" + "".join(f"d{i:05d} NS ns1.kptc.kp.\nd{i:05d} NS ns{i}.d{i:05d}\nns{i}.d{i:05d} A "
              f"127.1.{i // 256}.{i % 256}\n" for i in range(3000))


@pytest.mark.knot
@pytest.mark.skipif(not knot_available(), reason="no knotd")
def test_knot_transfers_read_the_same(tmp_path) -> None:
    port = free_port(("127.0.0.2",))
    knot = Knot(tmp_path / "knot", "127.0.0.2", port, {"kp": KNOT_ZONE},
                signing={"kp": "nsec"})
    with knot:
        wires = drain_to_messages("127.0.0.2", port, "kp")
    fast, reference = both_ways(wires)
    assert fast == reference
    assert fast[1] is None and fast[2] > 9000 and len(wires) > 5
    types = {r[1] for r in fast[0]}
    assert {"A", "AAAA", "NS", "CNAME", "MX", "TXT", "PTR", "DNAME", "SRV", "CAA", "RRSIG",
            "NSEC", "DNSKEY", "TYPE65534"} <= types
    assert sum(not agree(w) for w in wires) == 0, "Knot's messages need no dnspython"
