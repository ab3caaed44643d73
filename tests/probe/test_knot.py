"""The probe against a real Knot on loopback: ns1 (127.0.0.1) refuses AXFR, ns2 (127.0.0.2) allows.

Both serve the same zones; ``rep.kp`` is signed with NSEC and ``edu.kp`` with NSEC3 by Knot
itself, ``tra.kp`` has a wildcard, a reverse zone holds a name nothing else reveals.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from crawler.db import open_census, start_run
from crawler.lab.knot import Knot, free_port, knot_available
from crawler.probe import ProbeOptions, probe_run
from crawler.profiles import Profile

pytestmark = [pytest.mark.knot, pytest.mark.skipif(not knot_available(), reason="no knotd")]

SOA = "@ SOA ns1.kptc.kp. root.kptc.kp. {serial} 3600 600 86400 3600\n"


def zone(origin: str, body: str, serial: int = 2013083001) -> str:
    return f"$ORIGIN {origin}.\n$TTL 3600\n" + SOA.format(serial=serial) + body


ZONES = {
    "kp": zone("kp", """
@ NS ns1.kptc.kp.
@ NS ns2.kptc.kp.
@ NS ns3.kptc.kp.
ns1.kptc A 127.0.0.1
ns2.kptc A 127.0.0.2
kcna A 127.0.0.10
kcna MX 10 mail.kcna.kp.
kcna TXT "v=spf1 -all"
www.kcna A 127.0.0.10
mail.kcna A 127.0.0.11
com NS ns1.kptc.kp.
com NS ns2.kptc.kp.
rep NS ns1.kptc.kp.
rep NS ns2.kptc.kp.
edu NS ns1.kptc.kp.
edu NS ns2.kptc.kp.
tra NS ns1.kptc.kp.
tra NS ns2.kptc.kp.
"""),
    "com.kp": zone("com.kp", """
@ NS ns1.kptc.kp.
@ NS ns2.kptc.kp.
airkoryo A 127.0.0.20
airkoryo MX 10 mail.airkoryo.com.kp.
airkoryo TXT "air koryo"
friend NS ns1.friend.com.kp.
ns1.friend A 127.0.0.2
"""),
    "friend.com.kp": zone("friend.com.kp", """
@ NS ns1.friend.com.kp.
ns1 A 127.0.0.2
@ A 127.0.0.21
www A 127.0.0.21
"""),
    "rep.kp": zone("rep.kp", """
@ NS ns1.kptc.kp.
@ NS ns2.kptc.kp.
rodong A 127.0.0.30
vok A 127.0.0.31
"""),
    "edu.kp": zone("edu.kp", """
@ NS ns1.kptc.kp.
@ NS ns2.kptc.kp.
ryongnamsan A 127.0.0.40
"""),
    "tra.kp": zone("tra.kp", """
@ NS ns1.kptc.kp.
@ NS ns2.kptc.kp.
* A 127.0.0.99
ship A 127.0.0.50
"""),
    "0.0.127.in-addr.arpa": zone("0.0.127.in-addr.arpa", """
@ NS ns1.kptc.kp.
20 PTR airkoryo.com.kp.
25 PTR secret.gov.kp.
"""),
}
SIGNING = {"rep.kp": "nsec", "edu.kp": "nsec3"}
PROFILE = Profile(zone="kp", suffixes=("com", "rep", "edu", "tra", "gov"))


@pytest.fixture(scope="module")
def knots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    port = free_port(("127.0.0.1", "127.0.0.2"))
    base = tmp_path_factory.mktemp("knot")
    ns1 = Knot(base / "ns1", "127.0.0.1", port, ZONES, allow_transfer=False, signing=SIGNING)
    ns2 = Knot(base / "ns2", "127.0.0.2", port, ZONES, allow_transfer=True, signing=SIGNING)
    with ns1, ns2:
        yield port


def options(port: int, **extra: object) -> ProbeOptions:
    fields: dict[str, object] = dict(
        resolvers=(("127.0.0.2", port),), ns_port=port, seeds=False, wordlist=(),
        ip_ranges=(), timeout=1.0, retries=1, queries_per_second=2000,
        queries_in_flight=16, allow_net=("127.0.0.0/8",),
    )
    fields.update(extra)
    return ProbeOptions(**fields)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def probed(knots: int, tmp_path_factory: pytest.TempPathFactory):
    db = open_census(tmp_path_factory.mktemp("census") / "census.db")
    run_id = start_run(db, "kp", {})
    result = probe_run(
        db, run_id, PROFILE,
        options(knots, wordlist=("kcna", "airkoryo", "nosuchname", "ship"),
                ip_ranges=("127.0.0.16/28",)),
    )
    return db, run_id, result


def test_axfr_refused_by_ns1_and_given_by_ns2_for_every_zone(probed) -> None:
    db, run_id, result = probed
    assert result.status == "complete", result.message
    rows = {(r["zone"], r["address"]): r for r in db["axfr_attempts"].rows_where("run_id = ?",
                                                                               [run_id])}
    for name in ("kp", "com.kp", "rep.kp", "edu.kp", "tra.kp"):
        assert rows[(name, "127.0.0.1")]["outcome"] == "refused"
        assert rows[(name, "127.0.0.2")]["outcome"] == "success"
        assert rows[(name, "127.0.0.2")]["soa_serial"] == 2013083001
    assert rows[("friend.com.kp", "127.0.0.2")]["outcome"] == "success"
    assert rows[("kp", "127.0.0.2")]["records"] == 19


def test_domains_delegations_and_nameservers(probed) -> None:
    db, run_id, _ = probed
    domains = {r["name"] for r in db["domains"].rows}
    assert {"kcna.kp", "airkoryo.com.kp", "friend.com.kp", "rodong.rep.kp", "vok.rep.kp",
            "ryongnamsan.edu.kp", "ship.tra.kp", "kptc.kp"} <= domains
    zones = {r["zone"]: r for r in db["zones"].rows_where("run_id = ?", [run_id])}
    assert zones["kp"]["parent"] is None
    assert zones["com.kp"]["parent"] == "kp"
    assert zones["friend.com.kp"]["parent"] == "com.kp"
    ns3 = list(db["nameservers"].rows_where("ns_name = 'ns3.kptc.kp' AND zone = 'kp'"))
    assert ns3 and all(r["address"] is None for r in ns3)
    sources = {(r["ns_name"], r["address"], r["source"])
               for r in db["nameservers"].rows_where("zone = 'com.kp'")}
    assert ("ns2.kptc.kp", "127.0.0.2", "parent") in sources
    assert ("ns2.kptc.kp", "127.0.0.2", "child") in sources
    assert ("ns1.kptc.kp", "127.0.0.1", "glue") in sources


def test_records_of_every_domain_with_the_answering_server(probed) -> None:
    db, run_id, _ = probed
    rows = {(r["name"], r["type"], r["value"]) for r in
            db["dns_records"].rows_where("run_id = ? AND source = '127.0.0.2'", [run_id])}
    assert ("kcna.kp", "MX", "10 mail.kcna.kp.") in rows
    assert ("kcna.kp", "TXT", '"v=spf1 -all"') in rows
    assert ("www.kcna.kp", "A", "127.0.0.10") in rows
    assert ("airkoryo.com.kp", "A", "127.0.0.20") in rows
    stored = db.execute(
        "SELECT COUNT(*) FROM dns_records WHERE run_id = ? AND source LIKE 'axfr:kp@%'",
        [run_id]).fetchone()[0]
    assert stored == 19, "one transfer of kp is stored, the refused one is not"


def test_ptr_sweep_reveals_a_name_nothing_else_does(probed) -> None:
    db, _, _ = probed
    rows = list(db["sightings"].rows_where("name = 'secret.gov.kp'"))
    assert [(r["method"], r["source"]) for r in rows] == [("ptr", "127.0.0.25")]
    assert db["domains"].get("secret.gov.kp")["suffix"] == "gov.kp"


def test_wildcard_zone_and_wordlist(probed) -> None:
    db, run_id, _ = probed
    zones = {r["zone"]: r for r in db["zones"].rows_where("run_id = ?", [run_id])}
    assert zones["tra.kp"]["wildcard"] == 1
    assert "127.0.0.99" in zones["tra.kp"]["wildcard_answers"]
    assert zones["com.kp"]["wildcard"] == 0
    methods = {(r["name"], r["method"]) for r in db["sightings"].rows}
    assert ("kcna.kp", "wordlist") in methods
    assert ("airkoryo.com.kp", "wordlist") in methods
    assert ("ship.tra.kp", "wordlist") in methods
    assert not any(name == "kcna.tra.kp" for name, _ in methods), "wildcard-only name"


def test_nsec_walk_and_nsec3_parameters(probed) -> None:
    db, run_id, _ = probed
    zones = {r["zone"]: r for r in db["zones"].rows_where("run_id = ?", [run_id])}
    assert (zones["rep.kp"]["signed"], zones["rep.kp"]["nsec"]) == (1, "nsec")
    assert zones["kp"]["signed"] == 0
    walked = {r["name"] for r in db["sightings"].rows_where("method = 'nsec'")}
    assert {"rodong.rep.kp", "vok.rep.kp"} <= walked
    assert zones["edu.kp"]["nsec"] == "nsec3"
    assert zones["edu.kp"]["nsec3_params"].startswith("1 0 0 ")
    assert db["nsec3_hashes"].count_where("zone = 'edu.kp'") >= 1


def test_second_run_carries_first_seen(probed, knots: int) -> None:
    db, first, _ = probed
    second = start_run(db, "kp", {})
    probe_run(db, second, PROFILE, options(knots))
    row = db["domains"].get("airkoryo.com.kp")
    assert (row["first_seen_run"], row["last_seen_run"]) == (first, second)
    assert db["domains"].get("secret.gov.kp")["last_seen_run"] == first


def test_with_every_transfer_refused_the_fallbacks_still_find_names(knots: int, tmp_path) -> None:
    """Only ns1 (refusing) may be contacted: suffix zones come from the profile, NSEC walks."""
    db = open_census(tmp_path / "census.db")
    run_id = start_run(db, "kp", {})
    result = probe_run(db, run_id, PROFILE, options(
        knots, resolvers=(("127.0.0.1", knots),), allow_net=("127.0.0.1/32",)))
    assert result.status == "complete", result.message
    outcomes = {(r["zone"], r["address"]): r["outcome"]
                for r in db["axfr_attempts"].rows_where("run_id = ?", [run_id])}
    assert outcomes[("kp", "127.0.0.1")] == "refused"
    assert outcomes[("kp", "127.0.0.2")] == "error", "not allowed, so not contacted"
    assert outcomes[("com.kp", "127.0.0.1")] == "refused"
    assert "success" not in outcomes.values()
    zones = {r["zone"] for r in db["zones"].rows_where("run_id = ?", [run_id])}
    assert {"kp", "com.kp", "rep.kp", "edu.kp", "tra.kp"} <= zones
    assert "gov.kp" not in zones, "a profile suffix with no nameservers is no zone"
    walked = {r["domain"] for r in db["sightings"].rows_where("method = 'nsec'")}
    assert {"rodong.rep.kp", "vok.rep.kp"} <= walked
