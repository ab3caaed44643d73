"""The atheris targets (``atheris_targets.py``) for their share of the budget, each in a child
process, from a copy of the lab seeds; skipped where atheris is not installed."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fuzz.harness import CORPUS, REPORT, WORLD, split_http

pytestmark = [pytest.mark.fuzz, pytest.mark.slow]
atheris = pytest.importorskip("atheris")


def seed_folder(target: str, folder: Path) -> Path:
    folder.mkdir()
    if target == "wire":
        for path in (CORPUS / "axfr").glob("*.bin"):
            shutil.copy(path, folder / path.name)
    else:
        pages = [*WORLD.rglob("*.html"), *(CORPUS / "http").glob("*.http")]
        for i, path in enumerate(pages):
            body = path.read_bytes()
            body = split_http(body)[1] if path.suffix == ".http" else body
            (folder / f"{i}.html").write_bytes(bytes([i % 6]) + body)
    return folder


@pytest.mark.parametrize("target", ["wire", "page"])
def test_fuzz_atheris(target: str, fuzz_seconds: float, tmp_path: Path) -> None:
    seeds = seed_folder(target, tmp_path / "seeds")
    seconds = max(5, int(fuzz_seconds))
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "tests.fuzz.atheris_targets", target,
         f"-max_total_time={seconds}", "-timeout=2", "-rss_limit_mb=2048", "-max_len=65536",
         f"-artifact_prefix={tmp_path}/", "-print_final_stats=1", str(seeds)],
        capture_output=True, text=True, timeout=seconds + 120,
        cwd=Path(__file__).parents[2],
    )
    runs = next((line.split(":")[-1].strip() for line in run.stderr.splitlines()
                 if line.startswith("stat::number_of_executed_units")), "0")
    REPORT.append((f"atheris {target}", int(runs), time.monotonic() - started))
    found = sorted(p.name for p in tmp_path.glob("crash-*")) + sorted(
        p.name for p in tmp_path.glob("timeout-*"))
    assert run.returncode == 0 and not found, run.stderr[-3000:]
