"""``census runs``: every run with its status and counts."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from crawler.cli import cli
from crawler.db import RunStatus, finish_run, open_census, see_name, start_run
from crawler.diff import compare_runs
from crawler.runs import list_runs


def fill(db_path: Path) -> None:
    """Two kp runs (the second drops a domain and a site) and an interrupted one."""
    db = open_census(db_path)
    for run_domains, live in ((["kcna.kp", "friend.com.kp"], 2), (["kcna.kp"], 1)):
        run = start_run(db, "kp", {})
        for domain in run_domains:
            see_name(db, run, domain, domain, "kp", "seed", "kp.toml")
        for domain in run_domains[:live]:
            db["sites"].insert(
                {"run_id": run, "domain": domain, "url": f"http://{domain}/", "alive": 1}
            )
            db["pages"].insert(
                {
                    "run_id": run,
                    "domain": domain,
                    "url": f"http://{domain}/",
                    "sha256": "ab",
                    "text": "x",
                }
            )
        finish_run(db, run, RunStatus.COMPLETE)
    start_run(db, "kp", {})
    compare_runs(db)
    db.close()


def test_list_runs_counts(tmp_path: Path) -> None:
    fill(tmp_path / "c.db")
    db = open_census(tmp_path / "c.db")
    runs = list_runs(db)
    assert [(r.id, r.status, r.domains, r.live_sites, r.pages, r.changes) for r in runs] == [
        (1, "complete", 2, 2, 2, 0),
        (2, "complete", 1, 1, 1, 1),
        (3, "running", 0, 0, 0, 0),
    ]
    assert list_runs(db, "se") == []


def test_cli_runs(tmp_path: Path) -> None:
    fill(tmp_path / "c.db")
    result = CliRunner().invoke(cli, ["runs", "--db", str(tmp_path / "c.db")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == [
        "id",
        "zone",
        "started",
        "finished",
        "status",
        "domains",
        "live",
        "pages",
        "changes",
    ]
    assert lines[2].split()[0:2] == ["2", "kp"]
    assert lines[2].split()[-5:] == ["complete", "1", "1", "1", "1"]
    result = CliRunner().invoke(cli, ["runs", "--json", "--db", str(tmp_path / "c.db")])
    doc = json.loads(result.output)
    assert doc[0]["domains"] == 2 and doc[2]["status"] == "running"


def test_cli_runs_without_a_census(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["runs", "--db", str(tmp_path / "none.db")])
    assert result.exit_code == 1
    assert "no census database at" in result.output
