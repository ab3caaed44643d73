"""The probe against the lab world: the 2016 .kp leak, replayed on 127.45.176.0/22.

Equivalent to ``census probe kp --resolver <lab resolver> --ns-port <port> --no-seeds
--ip-range 127.45.176.0/22 --allow-net 127.0.0.0/8``, on a fresh census.
"""

from __future__ import annotations

import asyncio

import pytest

from crawler.db import open_census, start_run
from crawler.probe import ProbeOptions, probe_run
from crawler.probe.context import Context
from crawler.probe.engine import Engine
from crawler.probe.zones import ZoneState, transfer
from crawler.profiles import load_profile

SUBZONES = ("co.kp", "com.kp", "edu.kp", "gov.kp", "net.kp", "org.kp", "rep.kp")
LEAKED = [s.name for s in load_profile("kp").seeds if s.source.startswith("AXFR of .kp")]
"""The 27 names of the 2016 transfer, as the kp profile lists them."""


@pytest.fixture(scope="module")
def lab_probe(lab_dns, tmp_path_factory: pytest.TempPathFactory):
    db = open_census(tmp_path_factory.mktemp("lab") / "lab.db")
    run_id = start_run(db, "kp", {})
    options = ProbeOptions(
        resolvers=(lab_dns.resolver,), ns_port=lab_dns.port, seeds=False,
        ip_ranges=("127.45.176.0/22",), allow_net=("127.0.0.0/8",),
        queries_per_second=2000, queries_in_flight=16, timeout=1.0, retries=1,
    )
    steps: list[str] = []
    result = probe_run(db, run_id, load_profile("kp"), options,
                       progress=lambda step, done, total: steps.append(step))
    return db, run_id, result, steps


def test_every_leaked_domain_is_found_by_axfr(lab_probe) -> None:
    db, run_id, result, _ = lab_probe
    axfr = {r["domain"] for r in db["sightings"].rows_where(
        "run_id = ? AND method = 'axfr' AND domain IS NOT NULL", [run_id])}
    missing = set(LEAKED) - axfr
    assert len(LEAKED) == 27
    assert not missing, missing
    assert result.domains >= len(LEAKED)


def test_ns1_refuses_and_ns2_gives_kp_and_each_subzone(lab_probe) -> None:
    db, run_id, _, _ = lab_probe
    outcomes = {(r["zone"], r["ns_name"]): r for r in
                db["axfr_attempts"].rows_where("run_id = ?", [run_id])}
    for zone in ("kp", *SUBZONES):
        assert outcomes[(zone, "ns1.kptc.kp")]["outcome"] == "refused", zone
        assert outcomes[(zone, "ns2.kptc.kp")]["outcome"] == "success", zone
        assert outcomes[(zone, "ns2.kptc.kp")]["soa_serial"] == 2013083001
    assert outcomes[("law.kp", "ns-law.kptc.kp")]["outcome"] == "error"
    assert "halfway" in outcomes[("law.kp", "ns-law.kptc.kp")]["error"]
    transfers = db.execute(
        "SELECT COUNT(DISTINCT zone) FROM axfr_attempts WHERE run_id = ? AND outcome = "
        "'success' AND zone IN ('kp', 'co.kp', 'com.kp', 'edu.kp', 'gov.kp', 'net.kp', "
        "'org.kp', 'rep.kp')", [run_id]).fetchone()[0]
    assert transfers == 8


def test_delegations_and_nameservers(lab_probe) -> None:
    db, run_id, _, _ = lab_probe
    zones = {r["zone"]: r for r in db["zones"].rows_where("run_id = ?", [run_id])}
    for zone in SUBZONES:
        assert zones[zone]["parent"] == "kp"
        assert zones[zone]["soa_serial"] == 2013083001
    assert zones["airkoryo.com.kp"]["parent"] == "com.kp"
    assert zones["kcna.kp"]["parent"] == "kp"
    assert zones["kp"]["soa_mname"] == "ns1.kptc.kp"
    ns3 = list(db["nameservers"].rows_where("run_id = ? AND ns_name = 'ns3.kptc.kp'",
                                            [run_id]))
    assert ns3 and {r["address"] for r in ns3} == {None}


def test_mx_txt_a_records(lab_probe) -> None:
    db, run_id, _, _ = lab_probe
    resolver = "127.45.179.53"
    rows = {(r["name"], r["type"], r["value"]) for r in db["dns_records"].rows_where(
        "run_id = ? AND source = ?", [run_id, resolver])}
    assert ("pyongyangtimes.com.kp", "MX", "10 mail.pyongyangtimes.com.kp.") in rows
    assert ("pyongyangtimes.com.kp", "TXT", '"v=spf1 mx -all"') in rows
    assert ("friend.com.kp", "A", "127.45.176.73") in rows


def test_names_only_the_ptr_sweep_reveals(lab_probe) -> None:
    db, run_id, _, _ = lab_probe
    by_ptr = {r["name"] for r in db["sightings"].rows_where(
        "run_id = ? AND method = 'ptr'", [run_id])}
    assert {"smtp.star.net.kp", "www.kut.edu.kp"} <= by_ptr
    assert db["domains"].get("kut.edu.kp")["first_seen_run"] == run_id
    assert any(name.endswith("chosonexpo.com.kp") for name in by_ptr)


def test_wildcard_zone_yields_no_domains(lab_probe) -> None:
    db, run_id, _, _ = lab_probe
    tra = db["zones"].get((run_id, "tra.kp"))
    assert tra["wildcard"] == 1
    assert db["domains"].count_where("suffix = 'tra.kp'") == 0
    assert db["sightings"].count_where("run_id = ? AND name LIKE ?", [run_id, "%.tra.kp"]) == 0


def test_result_and_progress(lab_probe) -> None:
    _, _, result, steps = lab_probe
    assert result.status in ("complete", "partial"), result.message
    assert result.answered > 2000
    assert {"zones", "wordlist", "ptr", "records"} <= set(steps)


def test_the_labs_garbage_server_keeps_nothing(lab_dns, tmp_path) -> None:
    db = open_census(tmp_path / "garbage.db")
    run_id = start_run(db, "kp", {})
    options = ProbeOptions(ns_port=lab_dns.port, timeout=1.0, allow_net=("127.0.0.0/8",))
    ctx = Context(db, run_id, load_profile("kp"), options, Engine(), [lab_dns.resolver])
    outcome = asyncio.run(transfer(ctx, ZoneState("kp", None), "fault", "127.45.179.2"))
    row = next(db["axfr_attempts"].rows)
    assert outcome == "error" and row["error"], row
    assert db["dns_records"].count == 0


def test_the_profile_chooses_what_the_record_phase_asks(lab_dns, tmp_path) -> None:
    """A zone of a million domains asks fewer questions of each: ``[records]`` in its profile."""
    from crawler.errors import ProfileError
    from crawler.probe.context import limits_for
    from crawler.probe.records import collect_records
    from crawler.profiles import parse_profile

    profile = parse_profile('zone = "kp"\n[records]\ntypes = ["a", "MX"]\nhosts = ["", "www."]\n',
                            "test")
    assert (profile.records.types, profile.records.hosts) == (("A", "MX"), ("", "www."))
    db = open_census(tmp_path / "records.db")
    run_id = start_run(db, "kp", {})
    options = ProbeOptions(resolvers=(lab_dns.resolver,), queries_per_second=2000,
                           timeout=1.0, retries=1)
    ctx = Context(db, run_id, profile, options, Engine(limits_for(profile, options)),
                  [lab_dns.resolver])
    asyncio.run(collect_records(ctx, ["kcna.kp"]))
    rows = set(db.execute("SELECT name, type FROM dns_records").fetchall())
    assert ("kcna.kp", "A") in rows and ("kcna.kp", "MX") in rows
    assert {t for _, t in rows} <= {"A", "MX", "CNAME"}, "CNAMEs come with the A answers"
    assert {n for n, _ in rows} <= {"kcna.kp", "www.kcna.kp"}
    for bad in ('types = ["NOPE"]', 'hosts = ["www"]', "colour = 1"):
        with pytest.raises(ProfileError, match="malformed profile"):
            parse_profile(f'zone = "kp"\n[records]\n{bad}\n', "test")
