"""One writer per census: a second writer stops at once; abandoned runs become interrupted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from crawler.census import census_writer
from crawler.cli import cli
from crawler.db import RunStatus, get_run, open_census, start_run
from crawler.errors import DatabaseLocked


def test_second_writer_gets_a_clear_error(tmp_path: Path) -> None:
    db_path = tmp_path / "census.db"
    with census_writer(db_path):
        with pytest.raises(DatabaseLocked, match=rf"pid {os.getpid()}\)"), census_writer(db_path):
            pass
        result = CliRunner().invoke(cli, ["diff", "--db", str(db_path)])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    assert result.output.startswith(f"Error: {db_path} is being written by another census run")
    with census_writer(db_path):
        pass


def test_writer_in_another_process_blocks_the_cli(tmp_path: Path) -> None:
    db_path = tmp_path / "census.db"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys\nfrom crawler.census import census_writer\n"
            f"with census_writer({str(db_path)!r}):\n    print('held', flush=True)\n"
            "    sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        result = CliRunner().invoke(cli, ["diff", "--db", str(db_path)])
        assert result.exit_code == 1
        assert f"(pid {holder.pid})" in result.output
    finally:
        holder.communicate("", timeout=10)
    assert holder.returncode == 0


def test_abandoned_running_run_becomes_interrupted(tmp_path: Path) -> None:
    db_path = tmp_path / "census.db"
    db = open_census(db_path)
    run = start_run(db, "kp", {})
    db.close()
    with census_writer(db_path) as db:
        abandoned = get_run(db, run)
    assert abandoned["status"] == RunStatus.INTERRUPTED
    assert abandoned["finished_at"] is not None
    assert abandoned["message"] == "the process ended before the run finished"
