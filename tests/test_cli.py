"""The ``census`` command as a user meets it: bad input, an unreachable zone, Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from crawler.cli import cli


@pytest.fixture
def dead_resolver() -> Iterator[str]:
    """A bound UDP socket nobody reads: queries go in, nothing comes out."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    host, port = sock.getsockname()
    yield f"{host}:{port}"
    sock.close()


@contextmanager
def census_lab() -> Iterator[list[str]]:
    """``census lab`` in a process of its own, as in a second shell; yields the printed flags."""
    from crawler.lab import free_port, load_world

    addresses = load_world("kp").addresses()
    ports = [str(free_port(addresses)) for _ in range(3)]
    lab = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "crawler",
            "lab",
            "--dns-port",
            ports[0],
            "--http-port",
            ports[1],
            "--https-port",
            ports[2],
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert lab.stdout is not None
        yield next(line for line in lab.stdout if line.startswith("flags: ")).split()[1:]
    finally:
        lab.terminate()
        lab.wait(timeout=10)


def census_run(flags: list[str], out: Path, db_path: Path, *extra: str) -> list[str]:
    """The ``census run`` command line for the lab, as a user types it with the lab's flags."""
    return [sys.executable, "-m", "crawler", "run", "kp", *flags, "--db", str(db_path),
            "--out", str(out), "--qps", "500", *extra]


def census(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def runs(db_path: Path) -> list[tuple]:
    if not db_path.exists():
        return []
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute("SELECT id, status, message FROM runs ORDER BY id").fetchall()
    finally:
        conn.close()


@pytest.mark.parametrize("zone", ["k_p!", "kp-", "a..b", "x" * 64])
def test_an_invalid_zone_name_is_one_line_and_no_run(tmp_path: Path, zone: str) -> None:
    db_path = tmp_path / "census.db"
    code, output = census("probe", zone, "--db", str(db_path), "--resolver", "127.0.0.1:9")
    assert code == 1
    assert output.startswith("Error: invalid zone name")
    assert len(output.strip().splitlines()) == 1
    assert runs(db_path) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "cannot read profile"),
        ("zone = [", "malformed profile"),
        ('title = "no zone"', "'zone' (a string) is required"),
        ('zone = "kp"\n[[seeds]]\nsource = "x"\nnames = ["kcna.se"]', "is not under kp"),
        ('zone = "kp"\n[politeness]\nwarp = 9', "malformed profile"),
    ],
)
def test_a_missing_or_malformed_profile_is_one_line(
    tmp_path: Path, text: str | None, message: str
) -> None:
    profile = tmp_path / "profile.toml"
    if text is not None:
        profile.write_text(text)
    db_path = tmp_path / "census.db"
    code, output = census("probe", "kp", "--profile", str(profile), "--db", str(db_path))
    assert code == 1
    assert message in output and len(output.strip().splitlines()) == 1
    assert runs(db_path) == []


def test_an_invalid_resolver_is_one_line(tmp_path: Path) -> None:
    code, output = census("probe", "kp", "--db", str(tmp_path / "c.db"), "--resolver", "dns.kp")
    assert code == 1 and "invalid resolver 'dns.kp'" in output


@pytest.mark.slow
def test_an_unreachable_zone_ends_failed_and_says_nothing_answered(
    tmp_path: Path, dead_resolver: str
) -> None:
    db_path = tmp_path / "census.db"
    started = time.monotonic()
    code, output = census(
        "run",
        "kp",
        "--db",
        str(db_path),
        "--out",
        str(tmp_path),
        "--resolver",
        dead_resolver,
        "--timeout",
        "0.3",
        "--no-wordlist",
        "--ip-range",
        "127.45.176.0/30",
    )
    assert time.monotonic() - started < 30
    assert code == 1, output  # for cron: a failed census is not a success
    ((_, status, message),) = runs(db_path)
    assert status == "failed"
    assert message.startswith("nothing answered")
    assert "failed" in output and "nothing answered" in output


@pytest.mark.slow
def test_ctrl_c_marks_the_run_interrupted_and_keeps_earlier_runs(
    tmp_path: Path, dead_resolver: str
) -> None:
    db_path = tmp_path / "census.db"
    common = [
        "--db",
        str(db_path),
        "--out",
        str(tmp_path),
        "--resolver",
        dead_resolver,
        "--no-wordlist",
        "--ip-range",
        "127.45.176.0/30",
    ]
    code, output = census("probe", "kp", *common, "--timeout", "0.2")
    assert code == 1 and "nothing answered" in output
    before = runs(db_path)
    child = subprocess.Popen(
        [sys.executable, "-m", "crawler", "probe", "kp", *common, "--timeout", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    deadline = time.monotonic() + 20
    while len(runs(db_path)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=30)
    assert child.returncode == 1
    assert "interrupted" in stderr and "Traceback" not in stderr
    after = runs(db_path)
    assert after[0] == before[0]
    assert after[1][1] == "interrupted"
    assert "interrupted during probe" in after[1][2]


def test_help_explains_every_command() -> None:
    code, output = census("--help")
    assert code == 0
    for name in ("run", "probe", "crawl", "classify", "diff", "runs", "label", "serve", "lab"):
        assert f"  {name} " in output


@pytest.mark.slow
def test_kill_9_during_the_crawl_stops_all_writing_and_the_run_becomes_interrupted(
    tmp_path: Path,
) -> None:
    db_path = tmp_path / "census.db"
    with census_lab() as flags:
        run = subprocess.Popen(
            census_run(flags, tmp_path, db_path, "--delay", "0.5", "--no-wordlist"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def stage_and_pages() -> tuple[str | None, int]:
            if not db_path.exists():
                return None, 0
            conn = sqlite3.connect(db_path, timeout=10)
            try:
                stage = conn.execute("SELECT stage FROM runs").fetchone()
                pages = conn.execute("SELECT count(*) FROM pages").fetchone()[0]
            except sqlite3.OperationalError:
                return None, 0
            finally:
                conn.close()
            return (stage[0] if stage else None), pages

        deadline = time.monotonic() + 120
        while stage_and_pages()[1] == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert stage_and_pages()[0] == "crawl"
        run.kill()
        run.wait(timeout=10)
        time.sleep(1)
        _, pages = stage_and_pages()
        time.sleep(3)
        assert stage_and_pages()[1] == pages  # nobody writes any more
    code, output = census("diff", "--db", str(db_path))
    assert code == 1 and len(output.strip().splitlines()) == 1  # refused, no traceback
    ((_, status, message),) = runs(db_path)
    assert status == "interrupted"
    assert "ended before the run finished" in message


def test_progress_off_a_terminal_is_a_line_per_stage_every_thirty_seconds() -> None:
    from crawler.cli import Progress

    now = [0.0]
    lines: list[str] = []
    progress = Progress("lines", clock=lambda: now[0])
    import click

    real_echo = click.echo
    click.echo = lambda text, err=False: lines.append(text)  # type: ignore[assignment]
    try:
        progress("records", 1000, 5000)  # a step starting with a burst: no rate yet
        for t in range(1, 61):
            now[0] = float(t)
            progress("records", 1000 + t * 50, 5000)
        now[0] = 61.0
        progress("crawl", 3, None)
    finally:
        click.echo = real_echo  # type: ignore[assignment]
    assert lines == [
        "records: 1000/5000 queries",
        "records: 2500/5000 queries, 83.3 query/s, ETA 0:30",
        "records: 4000/5000 queries, 66.7 query/s, ETA 0:15",
        "crawl: 3/? pages",
    ]
