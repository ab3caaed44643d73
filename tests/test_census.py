"""The whole census, as ``census run`` does it, against the lab world changing between runs.

Run 1 censuses version 1 of the lab world, run 2 version 2 (ns2 closes its transfers, serials
bump, a domain is added and one removed, kcna.kp moves, a site goes dark, another comes back,
a page is edited).  ``census diff`` must report exactly those changes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from crawler.census import CensusOptions, run_census
from crawler.cli import cli
from crawler.lab import Lab, free_port, load_world
from tests.crawlhelp import rows as query


def lab_options(lab: Lab, db_path: Path, **changes: object) -> CensusOptions:
    """What the flags printed by ``census lab`` amount to, with the politeness of a test."""
    options = CensusOptions(
        zone="kp",
        db_path=str(db_path),
        out_dir=str(db_path.parent),
        resolvers=(f"{lab.world.resolver_address}:{lab.dns_port}",),
        ns_port=lab.dns_port,
        seeds=True,
        ip_ranges=("127.45.176.0/22",),
        allow_nets=("127.0.0.0/8",),
        qps=1000,
        timeout=1.0,
        crawl={
            "http_port": lab.http_port,
            "https_port": lab.https_port,
            "delay": 0,
            "download_timeout": 3,
            "max_pages": 30,
        },
    )
    return replace(options, **changes)


def start_lab(version: int) -> Lab:
    world = load_world("kp", version=version)
    addresses = world.addresses()
    return Lab(world, free_port(addresses), free_port(addresses), free_port(addresses)).start()


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int, int]]:
    db_path = tmp_path_factory.mktemp("census") / "census.db"
    runs = []
    for version in (1, 2):
        lab = start_lab(version)
        try:
            runs.append(run_census(lab_options(lab, db_path)))
        finally:
            lab.stop()
    yield db_path, runs[0], runs[1]


def test_each_run_has_a_truthful_status(two_runs: tuple[Path, int, int]) -> None:
    db_path, a, b = two_runs
    statuses = dict(query(db_path, "SELECT id, status FROM runs"))
    assert statuses == {a: "complete", b: "complete"}
    (message,) = query(db_path, "SELECT message FROM runs WHERE id = ?", a)[0]
    assert "zone transfers succeeded" in message
    assert "crawl:" in message and "classify:" in message and "compare:" in message


def test_every_live_lab_site_gets_its_purpose_from_what_the_census_crawled(
    two_runs: tuple[Path, int, int],
) -> None:
    """The purpose each lab site was built with, read from the pages the census stored (not
    from the lab's files); a site that never answers or fails gets at most a guess."""
    import tomllib

    db_path, a, _ = two_runs
    got = {domain: (label, json.loads(evidence)) for domain, label, evidence in query(
        db_path, "SELECT domain, label, evidence FROM classifications WHERE run_id = ?", a)}
    sites = Path(load_world("kp", version=1).sites_root)
    checked = 0
    for config_file in sorted(sites.glob("*/site.toml")):
        config = tomllib.loads(config_file.read_text(encoding="utf-8"))
        label, evidence = got[config_file.parent.name]
        if config.get("hang") or config.get("status", 200) >= 500:
            assert label == "unknown" or evidence.get("decided_by") == "name", evidence
            continue
        assert label == config["purpose"], (config_file.parent.name, evidence)
        checked += 1
    assert checked >= 20


def test_first_and_last_seen_carry_across_runs(two_runs: tuple[Path, int, int]) -> None:
    db_path, a, b = two_runs
    seen = {
        name: (first, last)
        for name, _, first, last in query(
            db_path, "SELECT name, suffix, first_seen_run, last_seen_run FROM domains"
        )
    }
    assert seen["kcna.kp"] == (a, b)
    assert seen["friend.com.kp"] == (a, a)
    assert seen["newsite.com.kp"] == (b, b)


def test_a_link_to_a_deleted_domain_is_a_lead_not_a_sighting(
    two_runs: tuple[Path, int, int],
) -> None:
    """friend.com.kp left the zone in v2; an unchanged page still links it."""
    db_path, a, b = two_runs
    assert query(
        db_path, "SELECT name, rcode, confirmed FROM leads WHERE run_id = ? AND domain = ?",
        b, "friend.com.kp",
    ) == [("www.friend.com.kp", "nxdomain", 0)]
    assert query(
        db_path, "SELECT count(*) FROM sightings WHERE run_id = ? AND domain = ?",
        b, "friend.com.kp",
    ) == [(0,)]
    assert query(db_path, "SELECT last_seen_run FROM domains WHERE name = 'friend.com.kp'") == [
        (a,)
    ]
    removed = query(
        db_path, "SELECT subject, after FROM changes WHERE to_run = ? AND kind = ?",
        b, "page_removed",
    )
    assert removed == [("http://tourismdprk.gov.kp/ja/", "http 404")]


def test_every_count_comes_from_one_query(two_runs: tuple[Path, int, int]) -> None:
    """What the run printed, census runs, the report and Datasette's run_counts agree."""
    from crawler.report import gather
    from tests.test_serve import get

    db_path, _, b = two_runs
    (counts,) = [r for r in get(db_path, "/census/run_counts.json?_shape=array")
                 if r["run_id"] == b]
    (message,) = query(db_path, "SELECT message FROM runs WHERE id = ?", b)[0]
    assert f"{counts['live_sites']} of {counts['sites']} sites alive" in message
    assert f"{counts['pages']} pages" in message
    from crawler.stages import classify_message

    # a purpose guessed from the name alone is counted apart from the tags content gave
    assert classify_message(counts) in message
    assert counts["guessed"] > 0  # the lab's dead sites: guessed from their names
    assert counts["guessed"] == query(
        db_path, "SELECT count(*) FROM classifications WHERE run_id = ? AND label != 'unknown' "
        "AND evidence LIKE '%guess from name%'", b)[0][0]
    assert f"compare: {counts['changes']} changes" in message
    runs = CliRunner().invoke(cli, ["runs", "--db", str(db_path), "--json"])
    (listed,) = [r for r in json.loads(runs.output) if r["id"] == b]
    assert {k: listed[k] for k in ("domains", "live_sites", "pages", "changes")} == {
        k: counts[k] for k in ("domains", "live_sites", "pages", "changes")
    }
    numbers = gather(db_path, b)["numbers"]
    assert (numbers["domains"], numbers["live"], numbers["pages"], numbers["changes"],
            numbers["tagged"], numbers["guessed"]) == (
        counts["domains"], counts["live_sites"], counts["pages"], counts["changes"],
        counts["tagged"], counts["guessed"]
    )


def test_link_discovery_probes_and_crawls_new_names(two_runs: tuple[Path, int, int]) -> None:
    db_path, a, _ = two_runs
    assert query(
        db_path,
        "SELECT name, source FROM sightings WHERE run_id = ? AND method = 'link' ORDER BY name",
        a,
    ) == [
        ("news.kftrade.com.kp", "http://pyongyangtimes.com.kp/"),
        ("www.kftrade.com.kp", "http://pyongyangtimes.com.kp/"),
    ]
    assert query(
        db_path, "SELECT alive FROM sites WHERE run_id = ? AND domain = ?", a, "kftrade.com.kp"
    ) == [(1,)]


EXPECTED = {
    ("axfr_closed", f"{zone} @ ns2.kptc.kp 127.45.176.16")
    for zone in (
        "kp",
        "co.kp",
        "com.kp",
        "edu.kp",
        "gov.kp",
        "net.kp",
        "org.kp",
        "rep.kp",
        "aca.kp",
        "law.kp",
        "sca.kp",
        "tra.kp",
    )
} | {
    ("soa_serial", "kp"),
    ("soa_serial", "com.kp"),
    ("soa_serial", "kcna.kp"),
    ("domain_added", "newsite.com.kp"),
    ("domain_removed", "friend.com.kp"),
    ("address", "kcna.kp"),
    ("address", "www.kcna.kp"),
    ("site_down", "koredufund.org.kp"),
    ("site_up", "ma.gov.kp"),
    # the edited page: one change, though the bare and the www. home page both captured it
    ("page_changed", "http://youth.rep.kp/"),
    # a page now 404 is removed; a page that times out is unreachable, not removed or changed
    ("page_removed", "http://tourismdprk.gov.kp/ja/"),
    ("page_unreachable", "http://tourismdprk.gov.kp/zh/"),
}


def test_diff_reports_exactly_the_world_changes(two_runs: tuple[Path, int, int]) -> None:
    db_path, a, b = two_runs
    result = CliRunner().invoke(cli, ["diff", "--db", str(db_path), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["from_run"]["id"], report["to_run"]["id"]) == (a, b)
    found = {(c["kind"], c["subject"]) for c in report["changes"]}
    assert found == EXPECTED
    stored = set(
        query(db_path, "SELECT kind, subject FROM changes WHERE from_run = ? AND to_run = ?", a, b)
    )
    assert stored == EXPECTED


def test_diff_text_and_markdown_lead_with_the_transfer_headline(
    two_runs: tuple[Path, int, int],
) -> None:
    db_path, _, _ = two_runs
    for fmt in ("text", "markdown"):
        result = CliRunner().invoke(cli, ["diff", "--db", str(db_path), "--format", fmt])
        assert result.exit_code == 0, result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert any("axfr" in line.lower() or "transfer" in line.lower() for line in lines[:5])
        assert "youth.rep.kp" in result.output


def test_unchanged_pages_are_revisits_stored_once(two_runs: tuple[Path, int, int]) -> None:
    db_path, a, b = two_runs
    revisits = query(
        db_path,
        "SELECT p.url, p.text, o.run_id, o.text IS NOT NULL FROM pages p "
        "JOIN pages o ON o.id = p.revisit_of WHERE p.run_id = ?",
        b,
    )
    assert all(text is None and run == a for _, text, run, _ in revisits)
    assert sum(has_text for *_, has_text in revisits) > 20  # the text is in run 1's row
    from warcio.archiveiterator import ArchiveIterator

    types = set()
    for path in sorted((db_path.parent / "warc").glob(f"census-run{b:05d}-*.warc.gz")):
        with path.open("rb") as fh:
            types |= {record.rec_type for record in ArchiveIterator(fh)}
    assert "revisit" in types


def test_runs_lists_both_with_counts(two_runs: tuple[Path, int, int]) -> None:
    db_path, a, b = two_runs
    result = CliRunner().invoke(cli, ["runs", "--db", str(db_path), "--json"])
    assert result.exit_code == 0, result.output
    runs = {r["id"]: r for r in json.loads(result.output)}
    assert set(runs) == {a, b}
    assert runs[b]["changes"] == len(EXPECTED)


def test_datasette_shows_the_second_census(two_runs: tuple[Path, int, int]) -> None:
    from tests.test_serve import get

    db_path, _, b = two_runs
    latest = get(db_path, "/census/latest_census.json?_shape=array&_size=max")
    assert {row["run_id"] for row in latest} == {b}
    domains = {row["domain"] for row in latest}
    assert "newsite.com.kp" in domains and "friend.com.kp" not in domains
    new = get(db_path, "/census/new_sites.json?_shape=array&run=")
    assert [row["domain"] for row in new] == ["newsite.com.kp"]
    history = get(db_path, "/census/change_history.json?_shape=array&kind=axfr_closed")
    assert len(history) == 12


def test_the_report_of_the_second_run_lists_its_changes(
    two_runs: tuple[Path, int, int], tmp_path: Path
) -> None:
    from crawler.report import write_report

    db_path, _, b = two_runs
    path = write_report(str(db_path), b, str(tmp_path / "report.html"), None)
    html = Path(path).read_text()
    assert "friend.com.kp" in html and "newsite.com.kp" in html
    assert html.count("<svg") >= 3
