"""Screenshots: Chromium reaches only the site's hosts, at the addresses the probe recorded.

The rules are tested without a browser; the stage itself ran in the session's lab census
(``census run`` with the screenshots stage), whose PNGs and ``sites.screenshot`` are checked.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from crawler import screenshots
from crawler.netpolicy import NetPolicy
from crawler.screenshots import (
    chromium_command,
    resolver_rules,
    site_hosts,
    take_screenshots,
    target_url,
)
from tests.test_serve import build_lab_census

ADDRESSES = {
    "kcna.kp": ["127.45.176.20"],
    "www.kcna.kp": ["127.45.176.20"],
    "evil.kcna.kp": ["10.0.0.1"],
    "other.kp": ["127.45.176.30"],
}


@pytest.fixture(scope="session")
def lab_census(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    return build_lab_census(tmp_path_factory.getbasetemp())


def test_only_the_sites_hosts_at_allowed_addresses() -> None:
    hosts, why = site_hosts("kcna.kp", ADDRESSES, NetPolicy(["127.0.0.0/8"]))
    assert hosts == {"kcna.kp": "127.45.176.20", "www.kcna.kp": "127.45.176.20"}
    assert why == ""
    rules = resolver_rules(hosts)
    assert rules.endswith("MAP * ~NOTFOUND")
    assert "10.0.0.1" not in rules and "other.kp" not in rules


def test_a_site_on_a_refused_address_is_not_opened() -> None:
    hosts, why = site_hosts("kcna.kp", ADDRESSES, NetPolicy())
    assert hosts == {}
    assert "127.45.176.20 is not a globally routable address" in why


def test_url_on_the_labs_port_and_only_for_known_hosts() -> None:
    hosts = {"kcna.kp": "127.45.176.20"}
    assert target_url("https://kcna.kp/kp/index.html", hosts, {"https": 8443}) == (
        "https://kcna.kp:8443/kp/index.html"
    )
    assert target_url("http://kcna.kp/", hosts, {}) == "http://kcna.kp/"
    assert target_url("http://127.0.0.1/", hosts, {}) is None
    assert target_url("file:///etc/passwd", hosts, {}) is None


def test_everything_else_goes_to_a_closed_proxy(tmp_path: Path) -> None:
    command = chromium_command("chromium", "http://kcna.kp/", tmp_path / "k.png",
                               {"kcna.kp": "127.45.176.20"}, 9, str(tmp_path))
    assert "--proxy-server=http://127.0.0.1:9" in command
    assert "--proxy-bypass-list=<-loopback>;kcna.kp" in command
    assert command[-1] == "http://kcna.kp/"


def test_no_chromium_skips_with_a_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(screenshots, "find_chromium", lambda: None)
    result = take_screenshots(tmp_path / "none.db", 1, tmp_path)
    assert "chromium is not installed" in result.message()
    assert not (tmp_path / "screenshots").exists()


@pytest.mark.skipif(not shutil.which("chromium"), reason="needs Debian's chromium")
def test_every_live_site_has_its_screenshot(lab_census: tuple[Path, int]) -> None:
    db_path, run_id = lab_census
    conn = sqlite3.connect(db_path)
    sites = conn.execute("SELECT domain, alive, screenshot FROM sites WHERE run_id = ?",
                         [run_id]).fetchall()
    message = conn.execute("SELECT message FROM runs WHERE id = ?", [run_id]).fetchone()[0]
    conn.close()
    live = [(d, s) for d, alive, s in sites if alive]
    assert live and all(s == f"screenshots/run{run_id}/{d}.png" for d, s in live)
    assert all(s is None for _, alive, s in sites if not alive)
    for _, shot in live:
        png = db_path.parent / shot
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"screenshots: {len(live)} of {len(live)} sites" in message


def test_screenshots_are_found_where_the_run_wrote_them_wherever_the_db_lives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's layout: ``--db lab.db`` in one folder, the files under ``output/``."""
    from crawler.db import open_census, start_run
    from crawler.report import gather
    from crawler.serve import screenshot_dir

    out = tmp_path / "output"
    png = out / "screenshots" / "run1" / "kcna.kp.png"
    png.parent.mkdir(parents=True)
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 100)
    db_path = tmp_path / "lab.db"
    db = open_census(db_path)
    run_id = start_run(db, "kp", {"out_dir": str(out)})
    db["domains"].insert({"name": "kcna.kp", "suffix": "kp", "first_seen_run": run_id,
                          "last_seen_run": run_id})
    db["sites"].insert({"run_id": run_id, "domain": "kcna.kp", "url": "http://kcna.kp/",
                        "alive": 1, "http_status": 200,
                        "screenshot": "screenshots/run1/kcna.kp.png"})
    db.close()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # opened from another folder than the run's
    (site,) = gather(db_path, run_id)["sites"]
    assert site["screenshot_uri"].startswith("data:image/png;base64,")
    assert screenshot_dir(db_path) == out / "screenshots"
