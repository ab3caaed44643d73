"""``census report`` on a census of the lab world, rendered by a real browser.

The report is opened in Debian's headless Chromium: ``--dump-dom`` shows the page as drawn
(the sites table, the SVG charts), ``--screenshot`` keeps a picture of it.  With
``CENSUS_UPDATE_DOCS=1`` the picture goes to ``docs/images/report.png`` for the README.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from crawler.cli import cli
from crawler.report import Bar, bar_chart, write_report
from tests.test_serve import build_lab_census

CHROMIUM = shutil.which("chromium")
DOCS_IMAGE = Path(__file__).parent.parent / "docs" / "images" / "report.png"
DOCS_FULL_IMAGE = DOCS_IMAGE.with_name("report-full.png")


@pytest.fixture(scope="session")
def lab_census(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    return build_lab_census(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def report(lab_census: tuple[Path, int], tmp_path_factory: pytest.TempPathFactory) -> Path:
    db_path, run_id = lab_census
    return write_report(db_path, run_id, tmp_path_factory.mktemp("report") / "report.html")


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[bytes]:
    """Headless Chromium with no network at all: the report must need none."""
    return subprocess.run(
        [CHROMIUM or "chromium", "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND",
         "--hide-scrollbars", *args],
        capture_output=True, timeout=60, check=True,
    )


def test_report_is_self_contained(report: Path, lab_census: tuple[Path, int]) -> None:
    html = report.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", html)
    assert "<link" not in html and "<script" not in html
    db_path, run_id = lab_census
    conn = sqlite3.connect(db_path)
    shots = conn.execute("SELECT count(*) FROM sites WHERE run_id = ? AND screenshot IS NOT NULL",
                         [run_id]).fetchone()[0]
    conn.close()
    assert html.count('src="data:image/png;base64,') == shots


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium")
def test_report_renders_in_chromium(
    report: Path, lab_census: tuple[Path, int], tmp_path: Path
) -> None:
    db_path, run_id = lab_census
    dom = chromium("--dump-dom", report.as_uri(), profile=tmp_path / "p1").stdout.decode()
    table = dom[dom.index('<table id="sites">'):]
    table = table[: table.index("</table>")]
    dead = dom[dom.index('<table id="dead-sites"'):]
    dead = dead[: dead.index("</table>")]
    conn = sqlite3.connect(db_path)
    live = {d for (d,) in conn.execute(
        "SELECT domain FROM sites WHERE run_id = ? AND alive", [run_id])}
    down = {d for (d,) in conn.execute(
        "SELECT domain FROM sites WHERE run_id = ? AND NOT alive", [run_id])}
    conn.close()
    assert set(re.findall(r'<tr data-domain="([^"]+)"', table)) == live
    assert set(re.findall(r'<tr data-domain="([^"]+)"', dead)) == down
    assert 'class="pill up">up 200' in table and "news_media" in table
    # dead sites: one line each, the raw errors folded away
    assert "connection refused on" in dead or "timed out on" in dead
    assert dead.count("<details>") == len(down)
    for chart in ("chart-purposes", "chart-languages", "chart-runs"):
        block = dom[dom.index(f'id="{chart}"'):]
        block = block[: block.index("</svg>")]
        assert block.count('class="bar"') >= 1, chart
    png = DOCS_IMAGE if os.environ.get("CENSUS_UPDATE_DOCS") else tmp_path / "report.png"
    png.parent.mkdir(parents=True, exist_ok=True)
    chromium("--window-size=1280,1600", f"--screenshot={png}", report.as_uri(),
             profile=tmp_path / "p2")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium")
def test_dead_sites_fit_in_two_screen_heights_per_twenty(
    report: Path, lab_census: tuple[Path, int], tmp_path: Path
) -> None:
    """Measured as drawn: a copy of the report writes the table's height into its title."""
    db_path, run_id = lab_census
    conn = sqlite3.connect(db_path)
    (down,) = conn.execute("SELECT count(*) FROM sites WHERE run_id = ? AND NOT alive",
                           [run_id]).fetchone()
    conn.close()
    assert down >= 10  # the lab world has many dead sites
    probe = tmp_path / "measure.html"
    probe.write_text(report.read_text().replace(
        "</body>", "<script>document.title = 'h=' + "
        "document.getElementById('dead-sites').offsetHeight + ' ' + "
        "document.body.scrollHeight;</script></body>"))
    dom = chromium("--window-size=1280,800", "--dump-dom", probe.as_uri(),
                   profile=tmp_path / "p3").stdout.decode()
    height, page = map(int, re.search(r"<title>h=(\d+) (\d+)</title>", dom).groups())
    assert height <= 2 * 800 * max(1, down) / 20, (height, down)
    if os.environ.get("CENSUS_UPDATE_DOCS"):  # the whole report, dead sites included
        chromium(f"--window-size=1280,{page}", f"--screenshot={DOCS_FULL_IMAGE}",
                 report.as_uri(), profile=tmp_path / "p4")


def test_census_report_command(lab_census: tuple[Path, int], tmp_path: Path) -> None:
    db_path, run_id = lab_census
    out = tmp_path / "r.html"
    result = CliRunner().invoke(cli, ["report", "--db", str(db_path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    assert f"run {run_id}" in out.read_text()
    missing = CliRunner().invoke(cli, ["report", "--db", str(db_path), "--run", "999"])
    assert missing.exit_code == 1 and "no run 999" in missing.output


def test_bar_chart_escapes_labels() -> None:
    svg = bar_chart([Bar("<b>&", 3), Bar("ko", 1)], "t<")
    assert "<b>" not in svg and "&lt;b&gt;&amp;" in svg
    assert svg.count('class="bar"') == 2
