"""The probe against a signed zone that refuses every transfer: the lab world ``signed``.

``zz`` is signed with NSEC and most of its delegations are secure (DS), ``co.zz`` with
NSEC3, ``net.zz`` with NSEC3 and opt-out; ``stale.zz`` has parent glue pointing at an old
server that still gives the zone away; ``lame.zz`` is delegated to a server that refuses.
The same census is taken twice: with the lab serving the national zones, and with Knot
serving and signing them itself (NSEC, NSEC3 with DS records at the delegations) on the
national servers' addresses, the lab serving the rest.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
import sqlite_utils

from crawler.db import open_census, run_domains, start_run
from crawler.lab import LabDNS, free_port, load_world
from crawler.lab.dnssec import nsec3_hash
from crawler.lab.knot import Knot, knot_available
from crawler.probe import ProbeOptions, answers, checkpoint, probe_names, probe_run
from crawler.probe.phases import restart_probe
from crawler.probe.wordlist import RANDOM_LABELS
from crawler.profiles import Profile

WORLD = load_world("signed")
PROFILE = Profile(zone="zz", suffixes=("co", "net"))
WORDLIST = ("bank", "news", "shop", "tour", "noc", "www")
NATIONAL = ("127.45.184.1", "127.45.184.2")
KNOT_POLICY = {"zz": "nsec", "co.zz": "nsec3-bare", "net.zz": "nsec3-optout"}


def _zone_text(origin: str) -> str:
    return (WORLD.root / "zones" / f"{origin}.zone").read_text(encoding="utf-8")


@pytest.fixture(scope="module", params=["lab", pytest.param("knot", marks=pytest.mark.knot)])
def census(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple]:
    world = WORLD
    knots: list[Knot] = []
    if request.param == "knot":
        if not knot_available():
            pytest.skip("no knotd")
        world = dataclasses.replace(
            WORLD, servers=[s for s in WORLD.servers if s.address not in NATIONAL])
    port = free_port(WORLD.addresses())
    base = tmp_path_factory.mktemp(request.param)
    with LabDNS(world, port) as lab:
        if request.param == "knot":
            zones = {origin: _zone_text(origin) for origin in KNOT_POLICY}
            for i, address in enumerate(NATIONAL):
                knot = Knot(base / f"ns{i + 1}", address, port, zones, allow_transfer=False,
                            signing=KNOT_POLICY)
                knot.start()
                knots.append(knot)
        try:
            db = open_census(base / "census.db")
            run_id = start_run(db, "zz", {})
            options = ProbeOptions(
                resolvers=(lab.resolver,), ns_port=port, seeds=False, wordlist=WORDLIST,
                ip_ranges=(), allow_net=("127.0.0.0/8",), queries_per_second=2000,
                queries_in_flight=16, timeout=1.0, retries=1,
            )
            result = probe_run(db, run_id, PROFILE, options)
            yield db, run_id, result
        finally:
            for knot in knots:
                knot.stop()


def test_every_transfer_of_the_signed_zones_is_refused(census) -> None:
    db, run_id, result = census
    assert result.status == "complete", result.message
    outcomes = {(r["zone"], r["address"]): r["outcome"]
                for r in db["axfr_attempts"].rows_where("run_id = ?", [run_id])}
    for zone in ("zz", "co.zz", "net.zz"):
        for address in NATIONAL:
            assert outcomes[(zone, address)] == "refused"


def test_the_walk_crosses_secure_delegations_and_closes_at_the_apex(census) -> None:
    db, run_id, _ = census
    expected = {n.to_text(omit_final_dot=True) for n in WORLD.denials["zz"].owners} - {"zz"}
    walked = {r["name"] for r in db["sightings"].rows_where(
        "run_id = ? AND method = 'nsec' AND source NOT LIKE 'nsec3:%'", [run_id])}
    assert expected - walked == set()
    assert {"bravo.zz", "india.zz", "stale.zz", "lame.zz", "co.zz"} <= walked
    zone = db["zones"].get((run_id, "zz"))
    assert (zone["nsec"], zone["chain_closed"]) == ("nsec", 1)
    assert zone["chain_length"] == len(WORLD.denials["zz"].owners)
    assert zone["chain_queries"] <= 2 * zone["chain_length"]


def test_every_nsec3_hash_is_collected_and_known_labels_named(census) -> None:
    db, run_id, result = census
    rows = {r["hash"]: r for r in db["nsec3_hashes"].rows_where(
        "run_id = ? AND zone = 'co.zz'", [run_id])}
    assert set(rows) == set(WORLD.denials["co.zz"].hashes)
    named = {r["name"]: r["named_by"] for r in rows.values() if r["name"]}
    assert named == {
        "co.zz": "apex", "bank.co.zz": "wordlist", "news.co.zz": "wordlist",
        "shop.co.zz": "wordlist", "tour.co.zz": "wordlist",
        "alpha.co.zz": "sighting", "hotel.co.zz": "sighting",
    }
    assert rows[nsec3_hash_of("x7k2q.co.zz")]["name"] is None
    zone = db["zones"].get((run_id, "co.zz"))
    assert (zone["chain_closed"], zone["chain_length"], zone["chain_unknown"]) == (1, 9, 2)
    assert not any(r["opt_out"] for r in rows.values())
    assert "NSEC3 chain of co.zz: 9 hashes, 7 named, 2 unknown" in result.message
    assert db["sightings"].count_where("name = 'hotel.co.zz' AND method = 'nsec'") == 1


def test_opt_out_spans_are_recorded_as_such(census) -> None:
    db, run_id, _ = census
    rows = list(db["nsec3_hashes"].rows_where("run_id = ? AND zone = 'net.zz'", [run_id]))
    assert {r["hash"] for r in rows} == set(WORLD.denials["net.zz"].hashes)
    assert len(rows) == 5, "apex, noc, q3z8 and the secure alpha and mesh; not cable fiber isp"
    assert all(r["opt_out"] == 1 for r in rows)
    assert db["zones"].get((run_id, "net.zz"))["chain_closed"] == 1


def test_stale_parent_glue_is_recorded_and_its_server_transfers(census) -> None:
    db, run_id, _ = census
    sources = {(r["ns_name"], r["address"], r["source"])
               for r in db["nameservers"].rows_where("run_id = ? AND zone = 'stale.zz'",
                                                     [run_id])}
    assert ("ns1.stale.zz", "127.45.184.20", "glue") in sources
    assert ("ns1.stale.zz", "127.45.184.21", "child") in sources
    assert ("ns1.stale.zz", "127.45.184.20", "child") not in sources
    outcomes = {r["address"]: r["outcome"]
                for r in db["axfr_attempts"].rows_where("run_id = ? AND zone = 'stale.zz'",
                                                        [run_id])}
    assert outcomes == {"127.45.184.20": "success", "127.45.184.21": "refused"}
    assert db["sightings"].count_where("name = 'www.stale.zz' AND method = 'axfr'") == 1


def test_lame_delegation_has_the_parents_nameservers_and_an_outcome(census) -> None:
    db, run_id, _ = census
    sources = {(r["ns_name"], r["address"], r["source"])
               for r in db["nameservers"].rows_where("run_id = ? AND zone = 'lame.zz'",
                                                     [run_id])}
    assert {("ns.lame.zz", "127.45.184.30", "parent"),
            ("ns.lame.zz", "127.45.184.30", "glue")} <= sources
    outcomes = [r["outcome"] for r in db["axfr_attempts"].rows_where(
        "run_id = ? AND zone = 'lame.zz'", [run_id])]
    assert outcomes == ["refused"]
    assert db["zones"].get((run_id, "lame.zz"))["parent"] == "zz"


def nsec3_hash_of(name: str) -> str:
    import dns.name

    return nsec3_hash(dns.name.from_text(name))


class Cut(BaseException):
    """Stands for a SIGKILL: raised as an answer is stored, nothing after it is written."""


@contextlib.contextmanager
def cut_after(phase: str, saves: int) -> Iterator[None]:
    """Stop the probe right after it stored its ``saves``-th answer of ``phase`` (each answer
    stored as it comes)."""
    real, stored = answers.AnswerLog.save, [0]

    def save(self: answers.AnswerLog) -> None:
        before = self.saves
        real(self)
        if self.phase == phase and self.saves > before:
            stored[0] += 1
            if stored[0] == saves:
                raise Cut

    with mock.patch.object(answers.AnswerLog, "save", save), pytest.raises(Cut):
        yield


PROBE_ROWS = {
    "sightings": "SELECT name, domain, method, source FROM sightings",
    "zones": "SELECT zone, signed, nsec, chain_closed, chain_length, chain_queries, "
             "chain_unknown FROM zones",
    "nsec3": "SELECT zone, hash, next_hash, name, named_by FROM nsec3_hashes",
    "nameservers": "SELECT zone, ns_name, address, source FROM nameservers",
}


def probe_rows(db: sqlite_utils.Database) -> dict[str, list[tuple[object, ...]]]:
    return {name: sorted(db.execute(sql).fetchall(), key=repr)
            for name, sql in PROBE_ROWS.items()}


def uninterrupted(lab: LabDNS, port: int, tmp_path: Path):
    """The probe of the signed world run whole: its options, census, result and questions."""
    options = ProbeOptions(
        resolvers=(lab.resolver,), ns_port=port, seeds=False, wordlist=WORDLIST,
        ip_ranges=(), allow_net=("127.0.0.0/8",), queries_per_second=2000,
        queries_in_flight=16, timeout=1.0, retries=1,
    )
    base = open_census(tmp_path / "base.db")
    before = lab.questions.copy()
    expected = probe_run(base, start_run(base, "zz", {}), PROFILE, options)
    return options, base, expected, lab.questions - before


def test_a_walk_cut_twice_asks_no_answered_question_again(tmp_path: Path) -> None:
    """Killed in the middle of the NSEC walk of zz, then in the middle of the NSEC3
    collection of co.zz, the probe redoes the phase from the answers it kept: no question
    answered before a kill reaches a server again, and the rows and query counts are an
    uninterrupted probe's."""
    port = free_port(WORLD.addresses())
    with LabDNS(WORLD, port) as lab:
        options, base, expected, base_asked = uninterrupted(lab, port, tmp_path)

        path = tmp_path / "cut.db"
        db = open_census(path)
        run_id = start_run(db, "zz", {})
        before = lab.questions.copy()
        # the phase asks 39 questions: zz's walk is the 3rd to 25th, co.zz's collection the
        # 26th to 34th; the second attempt answers the first 12 from what was kept
        for saves in (12, 17):
            with cut_after("nsec", saves):
                probe_run(db, run_id, PROFILE, options)
            assert db.execute("SELECT count(*) FROM probe_answers WHERE phase = 'nsec'"
                              ).fetchone()[0] == {12: 12, 17: 29}[saves]
            db.conn.close()  # what was not committed is lost
            db = open_census(path)
            restart_probe(db, run_id)
        result = probe_run(db, run_id, PROFILE, options)
        asked = lab.questions - before
    again = {q: n - base_asked[q] for q, n in asked.items()
             if q in base_asked and n > base_asked[q]}
    assert again == {}
    # nor any other: the NSEC3 collection asks the same made-up names in every attempt
    assert sum(asked.values()) == sum(base_asked.values())
    assert probe_rows(db) == probe_rows(base)
    assert result.message == expected.message  # "N queries answered, T timeouts"
    assert db.execute("SELECT count(*) FROM probe_answers").fetchone()[0] == 0


def test_wildcard_detection_cut_asks_its_random_names_once(tmp_path: Path) -> None:
    """Killed among the wildcard check's questions (the wordlist phase's first), the redone
    phase asks the same random names, answered from what was kept: only questions in flight
    at the kill are asked again."""
    port = free_port(WORLD.addresses())
    with LabDNS(WORLD, port) as lab:
        options, base, expected, base_asked = uninterrupted(lab, port, tmp_path)

        path = tmp_path / "cut.db"
        db = open_census(path)
        run_id = start_run(db, "zz", {})
        before = lab.questions.copy()
        with cut_after("wordlist", 4):
            probe_run(db, run_id, PROFILE, options)
        db.conn.close()  # what was not committed is lost
        db = open_census(path)
        restart_probe(db, run_id)
        result = probe_run(db, run_id, PROFILE, options)
        asked = lab.questions - before
    # the stored four are not asked again; at most the other labels' questions in flight at
    # the cut are (new labels in each attempt asked all again: 4 more and up to 2 in flight)
    assert sum(asked.values()) - sum(base_asked.values()) <= RANDOM_LABELS - 1
    assert probe_rows(db) == probe_rows(base)
    assert result.message == expected.message


def test_names_from_links_probed_again_after_a_cut_ask_nothing_answered(tmp_path: Path) -> None:
    """The crawl stage asks the resolver about names found in links (``probe_names``); cut
    after five answers and done again, it asks each name once in all."""
    port = free_port(WORLD.addresses())
    links = [(f"{label}.zz", "link", "http://bravo.zz/") for label in (
        "alpha", "bravo", "charlie", "delta", "echo", "nosuch1", "nosuch2", "nosuch3")]
    with LabDNS(WORLD, port) as lab:
        options = ProbeOptions(resolvers=(lab.resolver,), ns_port=port, seeds=False,
                               allow_net=("127.0.0.0/8",), queries_per_second=2000,
                               queries_in_flight=1, timeout=1.0, retries=1)
        base = open_census(tmp_path / "base.db")
        before = lab.questions.copy()
        probe_names(base, start_run(base, "zz", {}), PROFILE, options, links)
        base_asked = lab.questions - before
        path = tmp_path / "census.db"
        db = open_census(path)
        run_id = start_run(db, "zz", {})
        before = lab.questions.copy()
        with cut_after("links", 5):
            probe_names(db, run_id, PROFILE, options, links)
        db.conn.close()  # what was not committed is lost
        db = open_census(path)
        new = probe_names(db, run_id, PROFILE, options, links)
        asked = lab.questions - before
    assert asked == base_asked, asked - base_asked
    assert new == ["alpha.zz", "bravo.zz", "charlie.zz", "delta.zz", "echo.zz"]
    assert db.execute("SELECT count(*) FROM leads WHERE confirmed = 1").fetchone()[0] == 5
    assert db.execute("SELECT count(*) FROM probe_answers").fetchone()[0] == 0


def test_records_of_names_from_links_cut_short_are_collected_on_redo(tmp_path: Path) -> None:
    """Cut while collecting the records of the domains links revealed, the crawl stage's redo
    (which passes only the names of domains the run does not know) still collects them all."""
    port = free_port(WORLD.addresses())
    links = [(f"{label}.zz", "link", "http://bravo.zz/") for label in (
        "alpha", "bravo", "charlie", "delta", "echo", "nosuch1")]
    records = "SELECT name, type, value FROM dns_records ORDER BY 1, 2, 3"
    with LabDNS(WORLD, port) as lab:
        options = ProbeOptions(resolvers=(lab.resolver,), ns_port=port, seeds=False,
                               allow_net=("127.0.0.0/8",), queries_per_second=2000,
                               queries_in_flight=1, timeout=1.0, retries=1)
        base = open_census(tmp_path / "base.db")
        probe_names(base, start_run(base, "zz", {}), PROFILE, options, links)
        path = tmp_path / "census.db"
        db = open_census(path)
        run_id = start_run(db, "zz", {})
        real = checkpoint.Checkpoint.save

        def save(self: checkpoint.Checkpoint, store: checkpoint.Store, final: bool = False
                 ) -> None:
            real(self, store, final)
            raise Cut  # after the first 5 replies' rows are stored

        with (mock.patch.object(checkpoint, "SAVE_REPLIES", 5),
              mock.patch.object(checkpoint, "SAVE_SECONDS", 0.0),
              mock.patch.object(checkpoint.Checkpoint, "save", save), pytest.raises(Cut)):
            probe_names(db, run_id, PROFILE, options, links)
        db.conn.close()  # what was not committed is lost
        db = open_census(path)
        known = set(run_domains(db, run_id))  # as the crawl stage's ``linked_names``
        new = probe_names(db, run_id, PROFILE, options,
                          [link for link in links if link[0] not in known])
    assert new == ["alpha.zz", "bravo.zz", "charlie.zz", "delta.zz", "echo.zz"]
    assert db.execute(records).fetchall() == base.execute(records).fetchall()
