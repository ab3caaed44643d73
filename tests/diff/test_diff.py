"""``census diff``: two runs of a small kp-like census, with the lab's v2 changes in between."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from click.testing import CliRunner

from crawler.cli import cli
from crawler.crawl.dedup import find_previous_page, page_text, revisit_fields
from crawler.db import RunStatus, finish_run, open_census, see_name, start_run
from crawler.diff import Kind, compare_runs, compare_with_previous, text_diff
from crawler.errors import IncomparableRuns

NEWS_V1 = "Kim Jong Un inspects a factory.\nThe harvest is good.\nWeather: sunny."
NEWS_V2 = "Kim Jong Un inspects a farm.\nThe harvest is good.\nWeather: sunny."

# domain -> (suffix, address, site title or None when the site is down, label, pages)
WORLD_V1: dict[str, tuple[str, str, str | None, str, dict[str, str]]] = {
    "kcna.kp": (
        "kp",
        "175.45.176.71",
        "KCNA",
        "news_media",
        {"http://kcna.kp/": "Korean Central News Agency", "http://kcna.kp/news": NEWS_V1},
    ),
    "rodong.rep.kp": (
        "rep.kp",
        "175.45.176.72",
        "Rodong Sinmun",
        "news_media",
        {"http://rodong.rep.kp/": "Rodong Sinmun front page"},
    ),
    "airkoryo.com.kp": (
        "com.kp",
        "175.45.176.73",
        "Air Koryo",
        "travel_tourism",
        {"http://airkoryo.com.kp/": "Fly Air Koryo"},
    ),
    "naenara.com.kp": (
        "com.kp",
        "175.45.176.74",
        "Naenara",
        "portal",
        {"http://naenara.com.kp/": "Naenara portal"},
    ),
    "friend.com.kp": ("com.kp", "175.45.176.75", None, "unknown", {}),
}


def world_v2() -> dict[str, tuple[str, str, str | None, str, dict[str, str]]]:
    """The v2 world: a domain added, one removed, a site dark, a page edited."""
    world = dict(WORLD_V1)
    del world["friend.com.kp"]
    world["mfa.gov.kp"] = (
        "gov.kp",
        "175.45.176.76",
        "Ministry of Foreign Affairs",
        "government",
        {"http://mfa.gov.kp/": "Ministry of Foreign Affairs of the DPRK"},
    )
    suffix, address, _, _, _ = world["airkoryo.com.kp"]
    world["airkoryo.com.kp"] = (suffix, address, None, "unknown", {})
    kcna = world["kcna.kp"]
    world["kcna.kp"] = (*kcna[:4], {**kcna[4], "http://kcna.kp/news": NEWS_V2})
    return world


def fill_run(
    db: sqlite_utils.Database,
    zone: str,
    world: dict[str, Any],
    *,
    serial: int,
    ns2_transfers: bool,
    status: RunStatus = RunStatus.COMPLETE,
) -> int:
    """One probe + crawl + classify of ``world``, as the pipeline would record it."""
    run = start_run(db, zone, {})
    for sub in ("kp", "com.kp", "rep.kp", "gov.kp"):
        db["zones"].insert(
            {
                "run_id": run,
                "zone": sub,
                "parent": None if sub == "kp" else "kp",
                "soa_serial": serial if sub == "kp" else 2013083001,
                "signed": 0,
                "wildcard": 0,
            }
        )
        for ns, address in (("ns1.kptc.kp", "175.45.176.15"), ("ns2.kptc.kp", "175.45.176.16")):
            db["nameservers"].insert(
                {"run_id": run, "zone": sub, "ns_name": ns, "address": address, "source": "child"}
            )
            ok = ns == "ns2.kptc.kp" and ns2_transfers
            db["axfr_attempts"].insert(
                {
                    "run_id": run,
                    "zone": sub,
                    "ns_name": ns,
                    "address": address,
                    "outcome": "success" if ok else "refused",
                    "records": 28 if ok else None,
                }
            )
    db["dns_records"].insert(
        {
            "run_id": run,
            "name": "kp",
            "type": "SOA",
            "ttl": 432000,
            "value": f"ns1.kptc.kp. root.ns1.kptc.kp. {serial} 3600 600 86400 3600",
        }
    )
    for domain, (suffix, address, title, label, pages) in world.items():
        method = "axfr" if ns2_transfers else "seed"
        see_name(
            db, run, domain, domain, suffix, method, "175.45.176.16" if ns2_transfers else "kp.toml"
        )
        if domain != "mfa.gov.kp":
            see_name(db, run, domain, domain, suffix, "seed", "kp.toml")
        db["dns_records"].insert_all(
            [
                {"run_id": run, "name": domain, "type": "A", "ttl": 432000, "value": address},
                {
                    "run_id": run,
                    "name": f"www.{domain}",
                    "type": "A",
                    "ttl": 432000,
                    "value": address,
                },
            ]
        )
        if domain == "kcna.kp":
            db["dns_records"].insert(
                {
                    "run_id": run,
                    "name": domain,
                    "type": "MX",
                    "ttl": 432000,
                    "value": "10 mail.kcna.kp.",
                }
            )
        db["sites"].insert(
            {
                "run_id": run,
                "domain": domain,
                "url": f"http://{domain}/",
                "final_url": f"http://{domain}/" if title else None,
                "http_status": 200 if title else None,
                "address": address,
                "alive": 1 if title else 0,
                "title": title,
                "pages": len(pages),
                "error": None if title else "timeout",
            }
        )
        db["classifications"].insert(
            {
                "run_id": run,
                "domain": domain,
                "label": label,
                "confidence": 0.9,
                "evidence": "{}",
                "source": "model",
            }
        )
        for url, text in pages.items():
            store_page(db, run, domain, url, text)
    finish_run(db, run, status)
    return run


def store_page(db: sqlite_utils.Database, run: int, domain: str, url: str, text: str) -> int:
    """What the crawler does: unchanged content becomes a revisit with no text of its own."""
    sha = hashlib.sha256(text.encode()).hexdigest()
    row: dict[str, Any] = {
        "run_id": run,
        "domain": domain,
        "url": url,
        "http_status": 200,
        "content_type": "text/html",
        "sha256": sha,
        "title": text[:20],
        "text": text,
        "warc_file": f"run{run}.warc.gz",
        "warc_offset": 100 * run,
    }
    previous = find_previous_page(db, url, sha, before_run=run)
    if previous:
        row.update(revisit_fields(previous))
    return int(db["pages"].insert(row).last_pk)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "census.db"


@pytest.fixture
def census(db_path: Path) -> sqlite_utils.Database:
    db = open_census(db_path)
    fill_run(db, "kp", WORLD_V1, serial=2013083001, ns2_transfers=True)
    fill_run(db, "kp", world_v2(), serial=2013083002, ns2_transfers=False)
    return db


EXPECTED = {
    (Kind.AXFR_CLOSED, "com.kp @ ns2.kptc.kp 175.45.176.16"),
    (Kind.AXFR_CLOSED, "gov.kp @ ns2.kptc.kp 175.45.176.16"),
    (Kind.AXFR_CLOSED, "kp @ ns2.kptc.kp 175.45.176.16"),
    (Kind.AXFR_CLOSED, "rep.kp @ ns2.kptc.kp 175.45.176.16"),
    (Kind.DOMAIN_ADDED, "mfa.gov.kp"),
    (Kind.DOMAIN_REMOVED, "friend.com.kp"),
    (Kind.SOA_SERIAL, "kp"),
    (Kind.SITE_DOWN, "airkoryo.com.kp"),
    (Kind.PAGE_CHANGED, "http://kcna.kp/news"),
}


def test_diff_reports_exactly_the_world_changes(census: sqlite_utils.Database) -> None:
    diff = compare_runs(census)
    assert (diff.run_a["id"], diff.run_b["id"]) == (1, 2)
    assert {(c.kind, c.subject) for c in diff.changes} == EXPECTED
    assert diff.changes[0].kind == Kind.AXFR_CLOSED
    by_kind = {c.kind: c for c in diff.changes}
    assert by_kind[Kind.SOA_SERIAL].before == "2013083001"
    assert by_kind[Kind.SOA_SERIAL].after == "2013083002"
    assert by_kind[Kind.DOMAIN_ADDED].detail == "found by seed"
    assert by_kind[Kind.DOMAIN_REMOVED].detail == "was found by axfr, seed"
    assert by_kind[Kind.AXFR_CLOSED].before == "success (28 records)"
    assert by_kind[Kind.AXFR_CLOSED].after == "refused"
    page = by_kind[Kind.PAGE_CHANGED]
    assert "-Kim Jong Un inspects a factory." in page.detail
    assert "+Kim Jong Un inspects a farm." in page.detail


def test_changes_table_holds_them_and_rediff_replaces(census: sqlite_utils.Database) -> None:
    compare_runs(census, 1, 2)
    compare_runs(census, 1, 2)
    rows = list(census.query("SELECT kind, subject, domain FROM changes ORDER BY id"))
    assert {(r["kind"], r["subject"]) for r in rows} == EXPECTED
    assert len(rows) == len(EXPECTED)
    assert {r["domain"] for r in rows if r["kind"] == "page_changed"} == {"kcna.kp"}
    history = list(census.query("SELECT * FROM change_history WHERE kind = 'soa_serial'"))
    assert history[0]["zone"] == "kp" and history[0]["to_started_at"]


def test_unchanged_pages_are_stored_once(census: sqlite_utils.Database) -> None:
    second = list(census.query("SELECT url, text, revisit_of FROM pages WHERE run_id = 2"))
    with_text = sorted(r["url"] for r in second if r["text"] is not None)
    assert with_text == ["http://kcna.kp/news", "http://mfa.gov.kp/"]
    revisit = next(r for r in second if r["url"] == "http://kcna.kp/")
    original = census.execute(
        "SELECT id FROM pages WHERE run_id = 1 AND url = 'http://kcna.kp/'"
    ).fetchone()[0]
    assert revisit["revisit_of"] == original
    third = fill_run(census, "kp", world_v2(), serial=2013083002, ns2_transfers=False)
    again = census.execute(
        "SELECT revisit_of FROM pages WHERE run_id = ? AND url = 'http://kcna.kp/'", [third]
    ).fetchone()[0]
    assert again == original, "revisits point at the row holding the text, not at a revisit"
    page_id = census.execute(
        "SELECT id FROM pages WHERE run_id = ? AND url = 'http://kcna.kp/'", [third]
    ).fetchone()[0]
    assert page_text(census, page_id) == "Korean Central News Agency"
    assert compare_runs(census).changes == []


def test_find_previous_page(census: sqlite_utils.Database) -> None:
    sha = hashlib.sha256(NEWS_V1.encode()).hexdigest()
    found = find_previous_page(census, "http://kcna.kp/news", sha)
    assert found is not None
    assert (found["run_id"], found["warc_file"], found["warc_offset"]) == (1, "run1.warc.gz", 100)
    assert find_previous_page(census, "http://kcna.kp/news", sha, before_run=1) is None
    assert find_previous_page(census, "http://kcna.kp/other", sha) is None


def test_text_report_is_grouped_most_important_first(census: sqlite_utils.Database) -> None:
    text = compare_runs(census).to_text()
    assert text.splitlines()[0].startswith("Changes in .kp from run 1 (complete, ")
    assert "9 change(s)" in text
    order = [
        text.index("HEADLINE: Zone transfer no longer possible (4)"),
        text.index("Domains added (1)"),
        text.index("Domains removed (1)"),
        text.index("SOA serial (1)"),
        text.index("Sites down (1)"),
        text.index("Pages changed (1)"),
    ]
    assert order == sorted(order)
    assert "  kp @ ns2.kptc.kp 175.45.176.16: success (28 records) -> refused" in text
    assert "  + mfa.gov.kp  (found by seed)" in text
    assert "    +Kim Jong Un inspects a farm." in text


def test_markdown_and_json(census: sqlite_utils.Database) -> None:
    diff = compare_runs(census)
    markdown = diff.to_markdown()
    assert markdown.startswith("# Changes in .kp from run 1")
    assert "## **Zone transfer no longer possible** (4)" in markdown
    assert "```diff" in markdown
    assert "\n- mfa.gov.kp  (found by seed)\n" in markdown
    doc = json.loads(diff.to_json())
    assert list(doc) == [
        "format",
        "zone",
        "from_run",
        "to_run",
        "notes",
        "total",
        "counts",
        "changes",
    ]
    assert doc["format"] == "census-diff/1"
    assert doc["from_run"]["id"] == 1 and doc["to_run"]["status"] == "complete"
    assert doc["total"] == 9 and doc["counts"]["axfr_closed"] == 4
    assert list(doc["counts"]) == [str(k) for k in Kind]
    assert set(doc["changes"][0]) == {"kind", "subject", "domain", "before", "after", "detail"}


def test_no_changes_between_identical_runs(db_path: Path) -> None:
    db = open_census(db_path)
    fill_run(db, "kp", WORLD_V1, serial=1, ns2_transfers=True)
    fill_run(db, "kp", WORLD_V1, serial=1, ns2_transfers=True)
    diff = compare_runs(db)
    assert diff.changes == []
    assert "No changes." in diff.to_text()


def test_a_page_fetched_from_the_other_host_of_its_site_is_the_same_page(db_path: Path) -> None:
    """The crawl takes each path once, from the bare or the www. host, http or https, whichever
    came first; which one did is not a change of the site, and a change is named by the bare
    host and http whichever run has it so."""
    moved = dict(WORLD_V1)
    kcna = moved["kcna.kp"]
    moved["kcna.kp"] = (*kcna[:4], {"https://www.kcna.kp/": kcna[4]["http://kcna.kp/"],
                                    "http://www.kcna.kp/news": NEWS_V2})
    db = open_census(db_path)
    fill_run(db, "kp", moved, serial=1, ns2_transfers=True)
    fill_run(db, "kp", WORLD_V1, serial=1, ns2_transfers=True)
    diff = compare_runs(db)
    assert [(c.kind, c.subject) for c in diff.changes] == [
        (Kind.PAGE_CHANGED, "http://kcna.kp/news")]


def test_transfer_that_opens_is_the_headline(db_path: Path) -> None:
    db = open_census(db_path)
    fill_run(db, "kp", WORLD_V1, serial=1, ns2_transfers=False)
    fill_run(db, "kp", WORLD_V1, serial=1, ns2_transfers=True)
    diff = compare_runs(db)
    assert {c.kind for c in diff.changes} == {Kind.AXFR_OPENED}
    assert diff.to_text().splitlines()[2] == ""
    assert "HEADLINE: Zone transfer now possible (4)" in diff.to_text()


def test_records_labels_titles_and_certificates(census: sqlite_utils.Database) -> None:
    census.execute(
        "UPDATE dns_records SET value = '175.45.176.99' WHERE run_id = 2 AND name = 'kcna.kp'"
        " AND type = 'A'"
    )
    census.execute(
        "UPDATE dns_records SET value = '20 mx.kcna.kp.' WHERE run_id = 2 AND type = 'MX'"
    )
    census.execute(
        "UPDATE sites SET title = 'Rodong', tls_subject = 'CN=rodong.rep.kp' "
        "WHERE run_id = 2 AND domain = 'rodong.rep.kp'"
    )
    census.execute(
        "UPDATE classifications SET label = 'political' "
        "WHERE run_id = 2 AND domain = 'naenara.com.kp'"
    )
    census["classifications"].insert(
        {"run_id": 2, "domain": "kcna.kp", "label": "government", "source": "label"}
    )
    census.conn.commit()
    diff = compare_runs(census)
    found = {(c.kind, c.subject): (c.before, c.after, c.detail) for c in diff.changes}
    assert found[(Kind.ADDRESS, "kcna.kp")] == ("175.45.176.71", "175.45.176.99", "A")
    assert found[(Kind.MX, "kcna.kp")][:2] == ("10 mail.kcna.kp.", "20 mx.kcna.kp.")
    assert found[(Kind.TITLE, "rodong.rep.kp")][:2] == ("Rodong Sinmun", "Rodong")
    assert found[(Kind.CERTIFICATE, "rodong.rep.kp")][:2] == (None, "subject CN=rodong.rep.kp")
    assert found[(Kind.LABEL_CHANGED, "naenara.com.kp")][:2] == ("portal", "political")
    assert found[(Kind.LABEL_CHANGED, "kcna.kp")] == ("news_media", "government", "model -> label")
    assert len(diff.changes) == len(EXPECTED) + 6


def test_default_baseline_skips_interrupted_and_failed_runs(census: sqlite_utils.Database) -> None:
    fill_run(census, "kp", WORLD_V1, serial=3, ns2_transfers=True, status=RunStatus.INTERRUPTED)
    fill_run(census, "kp", WORLD_V1, serial=4, ns2_transfers=True, status=RunStatus.FAILED)
    diff = compare_runs(census)
    assert (diff.run_a["id"], diff.run_b["id"]) == (1, 2)
    fifth = fill_run(census, "kp", WORLD_V1, serial=5, ns2_transfers=True)
    diff = compare_runs(census)
    assert (diff.run_a["id"], diff.run_b["id"]) == (2, fifth)
    assert diff.notes == ["not used as baselines: run 3 (interrupted), run 4 (failed)"]
    assert "note: not used as baselines: run 3 (interrupted), run 4 (failed)" in diff.to_text()
    assert compare_runs(census, None, 4 + 1).run_a["id"] == 2


def test_refuses_incomparable_runs(census: sqlite_utils.Database) -> None:
    other = fill_run(census, "se", {}, serial=1, ns2_transfers=False)
    with pytest.raises(IncomparableRuns, match=r"run 1 is a census of \.kp and run 3 of \.se"):
        compare_runs(census, 1, other)
    failed = fill_run(census, "kp", WORLD_V1, serial=3, ns2_transfers=True, status=RunStatus.FAILED)
    with pytest.raises(IncomparableRuns, match=r"run 4 is failed.*--force"):
        compare_runs(census, 2, failed)
    assert compare_runs(census, 2, failed, force=True).run_b["id"] == failed
    running = start_run(census, "kp", {})
    with pytest.raises(IncomparableRuns, match="still running"):
        compare_runs(census, 2, running)
    with pytest.raises(IncomparableRuns, match="with itself"):
        compare_runs(census, 2, 2)


def test_a_partial_run_is_finished_and_compared_with_a_note(
    census: sqlite_utils.Database,
) -> None:
    # most .kp censuses are partial: one nameserver or another is always silent
    partial = fill_run(
        census, "kp", world_v2(), serial=2013083002, ns2_transfers=False, status=RunStatus.PARTIAL
    )
    diff = compare_runs(census)
    assert (diff.run_a["id"], diff.run_b["id"]) == (2, partial)
    assert diff.notes[0].startswith("run 3 is partial")


def test_a_newer_run_given_first_is_refused(census: sqlite_utils.Database) -> None:
    with pytest.raises(IncomparableRuns, match="run 2 is newer than run 1: give the older"):
        compare_runs(census, 2, 1)


def test_force_lets_failed_and_interrupted_runs_be_the_default_pair(db_path: Path) -> None:
    db = open_census(db_path)
    fill_run(db, "kp", WORLD_V1, serial=1, ns2_transfers=True)
    fill_run(db, "kp", WORLD_V1, serial=2, ns2_transfers=True, status=RunStatus.INTERRUPTED)
    with pytest.raises(IncomparableRuns, match="found 1"):
        compare_runs(db)
    diff = compare_runs(db, force=True)
    assert (diff.run_a["id"], diff.run_b["id"]) == (1, 2)


def test_another_zone_in_the_census_gets_a_hint(db_path: Path) -> None:
    db = open_census(db_path)
    fill_run(db, "kp", WORLD_V1, serial=1, ns2_transfers=True)
    fill_run(db, "kp", WORLD_V1, serial=1, ns2_transfers=True)
    fill_run(db, "com.kp", {}, serial=1, ns2_transfers=True)
    with pytest.raises(IncomparableRuns, match=r"also holds kp: use --zone"):
        compare_runs(db)
    assert compare_runs(db, zone="kp").run_b["id"] == 2


def test_needs_two_complete_runs(db_path: Path) -> None:
    db = open_census(db_path)
    fill_run(db, "kp", WORLD_V1, serial=1, ns2_transfers=True)
    fill_run(db, "kp", WORLD_V1, serial=1, ns2_transfers=True, status=RunStatus.INTERRUPTED)
    with pytest.raises(IncomparableRuns, match=r"found 1; not comparable: run 2 \(interrupted\)"):
        compare_runs(db)


def test_compare_stage_diffs_a_running_run_with_its_baseline(
    census: sqlite_utils.Database,
) -> None:
    run = start_run(census, "kp", {})
    diff = compare_with_previous(census, run)
    assert diff is not None and diff.run_a["id"] == 2
    assert Kind.DOMAIN_REMOVED in {c.kind for c in diff.changes}
    assert compare_with_previous(census, 1) is None


def test_text_diff_is_bounded() -> None:
    before = "\n".join(f"line {i}" for i in range(1000))
    after = "\n".join(f"line {i} changed" for i in range(1000))
    diff = text_diff(before, after, max_lines=50)
    lines = diff.splitlines()
    assert len(lines) == 51
    assert lines[-1].startswith("... diff cut at 50 lines (")
    assert len(text_diff(before * 10, after * 10, max_bytes=2000)) < 2100
    assert text_diff("same", "same").startswith("(the extracted text is the same")


def test_domain_history_view(census: sqlite_utils.Database) -> None:
    rows = {
        (r["run_id"], r["domain"]): r
        for r in census.query("SELECT * FROM domain_history ORDER BY run_id, domain")
    }
    assert len(rows) == 10
    kcna = rows[(2, "kcna.kp")]
    assert (kcna["alive"], kcna["http_status"], kcna["title"], kcna["label"]) == (
        1,
        200,
        "KCNA",
        "news_media",
    )
    assert (kcna["address"], kcna["soa_serial"], kcna["pages"]) == ("175.45.176.71", 2013083002, 2)
    assert rows[(2, "airkoryo.com.kp")]["alive"] == 0
    assert rows[(1, "airkoryo.com.kp")]["soa_serial"] == 2013083001
    assert (1, "friend.com.kp") in rows and (2, "friend.com.kp") not in rows


def test_cli_diff(census: sqlite_utils.Database, db_path: Path) -> None:
    census.close()
    runner = CliRunner()
    result = runner.invoke(cli, ["diff", "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    assert "HEADLINE: Zone transfer no longer possible" in result.output
    result = runner.invoke(cli, ["diff", "1", "2", "--db", str(db_path), "--format", "json"])
    assert json.loads(result.output)["total"] == 9
    result = runner.invoke(cli, ["diff", "2", "--db", str(db_path), "--format", "markdown"])
    assert result.output.startswith("# Changes in .kp from run 1")
    result = runner.invoke(cli, ["diff", "1", "7", "--db", str(db_path)])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: no run 7"
    result = runner.invoke(cli, ["diff", "--db", str(db_path.parent / "none.db")])
    assert result.output.strip() == f"Error: no census database at {db_path.parent / 'none.db'}"
    assert not (db_path.parent / "none.db").exists()
    result = runner.invoke(cli, ["diff", "1", "2", "3", "--db", str(db_path)])
    assert result.exit_code == 2 and "at most two runs" in result.output


def test_certificate_renewal_is_not_a_change(census: sqlite_utils.Database) -> None:
    for run, not_after in ((1, "2025-01-01"), (2, "2025-04-01")):
        census.execute(
            "UPDATE sites SET tls_subject = 'CN=kcna.kp', tls_issuer = 'CN=kcna.kp', "
            "tls_names = '[\"kcna.kp\"]', tls_not_after = ? WHERE run_id = ? "
            "AND domain = 'kcna.kp'",
            [not_after, run],
        )
    census.conn.commit()
    assert {(c.kind, c.subject) for c in compare_runs(census).changes} == EXPECTED
    census.execute(
        "UPDATE sites SET tls_issuer = 'CN=Star CA' WHERE run_id = 2 AND domain = 'kcna.kp'"
    )
    census.conn.commit()
    change = next(c for c in compare_runs(census).changes if c.kind == Kind.CERTIFICATE)
    assert change.before == 'subject CN=kcna.kp; issuer CN=kcna.kp; names ["kcna.kp"]'
    assert change.after == 'subject CN=kcna.kp; issuer CN=Star CA; names ["kcna.kp"]'
