"""The whole-census bench, run small: two censuses of a generated delegation zone, compared."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from crawler.lab.knot import knot_available

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.skipif(not knot_available() or not shutil.which("unbound"),
                    reason="needs knotd and unbound")
def test_the_census_bench_runs_two_censuses_and_compares_them() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "bench/bench_census_1m.py", "--delegations", "300", "--sample", "3"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert len(re.findall(r"census \d: run \d complete", out)) == 2, out
    assert "probe: 301 domains (301 seen for the first time)" in out
    assert "probe: 301 domains (3 seen for the first time)" in out, "3 new in version 2"
    assert "crawl: 3 of 3 sites alive" in out
    changes = int(re.search(r"compare: (\d+) changes since run 1", out).group(1))
    assert changes >= 6, "3 domains gone and 3 new at least"
    assert len(re.findall(r"peak RSS: census process \d+ MB", out)) == 2
