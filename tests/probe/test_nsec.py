"""The NSEC walk and the NSEC3 collection on their own: next names, the hash ring, the loop
guard and the budgets, against the lab's signed world and a hand-made looping chain."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import dns.dnssec
import dns.name
import pytest

from crawler.db import open_census, start_run
from crawler.lab import LabDNS, free_port, load_world
from crawler.probe import nsec
from crawler.probe.context import Context
from crawler.probe.engine import Engine, Limits
from crawler.probe.nsec import Nsec3Chain, Nsec3Params, collect_nsec3, next_name, walk_nsec
from crawler.probe.options import ProbeOptions
from crawler.profiles import Profile

NS1 = "127.45.184.1"


def context(tmp_path: Path, port: int) -> Context:
    db = open_census(tmp_path / "census.db")
    profile = Profile(zone="zz", suffixes=("co", "net"))
    options = ProbeOptions(ns_port=port, allow_net=("127.0.0.0/8",))
    engine = Engine(Limits(queries_in_flight=4, queries_per_second=0, timeout=1, retries=0))
    return Context(db, start_run(db, "zz", {}), profile, options, engine, [])


@pytest.fixture(scope="module")
def signed() -> Iterator[LabDNS]:
    world = load_world("signed")
    with LabDNS(world, free_port(world.addresses())) as lab:
        yield lab


def test_next_name_sorts_after_the_name_and_all_below_it() -> None:
    name = dns.name.from_text("bravo.zz")
    after = next_name(name)
    assert after == dns.name.from_text("bravo\\000.zz")
    assert name < dns.name.from_text("www.bravo.zz") < after < dns.name.from_text("bravo0.zz")
    long = dns.name.from_text("a" * 63 + ".zz")
    assert next_name(long) == dns.name.from_text("a" * 62 + "b.zz")


def test_nsec3_hash_is_rfc_5155() -> None:
    params = Nsec3Params.from_text("1 0 10 aabbccdd")
    expected = dns.dnssec.nsec3_hash("www.co.zz", "aabbccdd", 10, 1).lower()
    assert params.hash_name("www.co.zz") == expected
    assert Nsec3Params.from_text("1 1 0 -").salt == b""


def test_the_ring_closes_only_when_every_next_hash_is_an_owner() -> None:
    chain = Nsec3Chain()
    assert not chain.covered(b"\x50") and not chain.closed
    chain.add(b"\x10", b"\x40", 0, "A")
    assert chain.covered(b"\x20") and not chain.covered(b"\x50") and not chain.closed
    chain.add(b"\x40", b"\x10", 1, "A")  # the last span wraps round to the first
    assert chain.covered(b"\x50") and chain.covered(b"\x05") and chain.closed


def walk_hand_made(tmp_path: Path, records: str) -> tuple[nsec.Walk, Context]:
    """Walk a zone whose NSEC records are written by hand (the lab adds none: no [dnssec])."""
    world_dir = tmp_path / "world"
    (world_dir / "zones").mkdir(parents=True)
    (world_dir / "zones" / "zz.zone").write_text(
        "$TTL 3600\n@ SOA ns.zz. h.zz. 1 1 1 1 1\n@ NS ns.zz.\n@ DNSKEY 257 3 13 AAAA\n"
        + records)
    (world_dir / "world.toml").write_text(
        'zone = "zz"\nresolver = "127.45.185.53"\n'
        '[[servers]]\nname = "ns.zz"\naddress = "127.45.185.1"\nzones = ["zz"]\n')
    world = load_world(str(world_dir))
    with LabDNS(world, free_port(world.addresses())) as lab:
        ctx = context(tmp_path, lab.port)
        walk = asyncio.run(walk_nsec(ctx, "zz", [("127.45.185.1", lab.port)]))
    return walk, ctx


def test_a_looping_chain_stops_the_walk_with_a_note(tmp_path: Path) -> None:
    """A server whose NSEC records point back (hostile or broken) cannot hold the walk."""
    walk, ctx = walk_hand_made(tmp_path, "@ NSEC a.zz. SOA NS DNSKEY NSEC\n"
                               "a A 127.0.0.1\na NSEC b.zz. A NSEC\n"
                               "b A 127.0.0.1\nb NSEC a.zz. A NSEC\n")
    assert (walk.names, walk.closed) == (2, False)
    assert walk.queries <= 6
    assert any("loops to a.zz." in note for note in ctx.notes), ctx.notes


def test_made_up_minimal_nsec_stops_the_walk(tmp_path: Path) -> None:
    """Online signers (RFC 4470) answer with a span around the name asked: no chain to walk."""
    walk, ctx = walk_hand_made(tmp_path, "@ NSEC a.zz. SOA NS DNSKEY NSEC\n"
                               "a A 127.0.0.1\na NSEC a\\000.zz. A NSEC\n")
    assert (walk.names, walk.closed) == (1, False)
    assert any("online signing" in note for note in ctx.notes), ctx.notes


def test_the_walk_stops_at_its_budget(signed, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nsec, "MAX_WALK", 5)
    ctx = context(tmp_path, signed.port)
    walk = asyncio.run(walk_nsec(ctx, "zz", [(NS1, signed.port)]))
    assert (walk.names, walk.closed) == (4, False)
    assert ctx.notes == ["NSEC walk of zz stopped at its budget (5 names)"]
    assert ctx.db["sightings"].count == 4


def test_the_walk_of_the_signed_zone_closes(signed, tmp_path: Path) -> None:
    ctx = context(tmp_path, signed.port)
    walk = asyncio.run(walk_nsec(ctx, "zz", [(NS1, signed.port)]))
    assert walk.closed and walk.names == len(load_world("signed").denials["zz"].owners) - 1
    # one query a name and one for the apex; nic.zz, which has names below it, takes two
    assert walk.queries == walk.names + 2


def test_a_collection_that_cannot_find_open_spans_says_so(
        signed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nsec, "HASHES_PER_QUERY", 1)
    ctx = context(tmp_path, signed.port)
    params = Nsec3Params.from_text("1 0 0 -")
    chain = asyncio.run(collect_nsec3(ctx, "co.zz", [(NS1, signed.port)], params))
    assert not chain.closed and chain.waiting
    assert "NSEC3 chain of co.zz not closed" in ctx.notes[0]
    assert ctx.db["nsec3_hashes"].count == len(chain.owners)
