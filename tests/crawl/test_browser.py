"""Browser capture: a site whose articles arrive by fetch() as JSON, rendered by Chromium."""

from __future__ import annotations

import importlib.util
import shutil
import sqlite3
from pathlib import Path

import pytest

from crawler.crawl import crawl_run
from crawler.crawl.browser import browser_capture
from crawler.lab import load_world
from tests.crawl.test_crawl import FAST, start_lab
from tests.crawlhelp import census_from_world, rows

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("chromium") is None, reason="no system chromium"),
    pytest.mark.skipif(importlib.util.find_spec("playwright") is None,
                       reason="playwright is not installed (test extra)"),
]

BROWSER_PAGES = "SELECT url FROM pages JOIN page_sources ON page_id = id WHERE source = 'browser'"

ARIRANG_PAGES = "SELECT pages FROM sites WHERE domain = 'arirang.com.kp'"


def test_a_fetch_driven_site_is_captured_whole_by_the_browser(tmp_path: Path) -> None:
    world = load_world("kp")
    lab, ports = start_lab(world)
    db_path = tmp_path / "census.db"
    run_id = census_from_world(db_path, world, ["arirang.com.kp", "tongil.com.kp"])
    try:
        crawl_run(str(db_path), run_id, str(tmp_path), ["127.0.0.0/8"], {**FAST, **ports})
        static = rows(db_path, "SELECT count(*) FROM pages WHERE url LIKE '%article.html?id=%'")
        result = browser_capture(db_path, run_id, tmp_path, ["127.0.0.0/8"], "auto",
                                 ports["http_port"], ports["https_port"])
        browsed = rows(db_path, BROWSER_PAGES)
        sites = rows(db_path, ARIRANG_PAGES)
        budget = rows(db_path, "SELECT domain, pages FROM sites ORDER BY domain")
        crawled = rows(db_path, "SELECT count(*) FROM pages")
        # a crawl stage resumed after the capture: the browser's pages are not the crawl's
        # (not counted, their links not followed) and the captured site is not captured again
        crawl_run(str(db_path), run_id, str(tmp_path), ["127.0.0.0/8"],
                  {**FAST, **ports, "resume": True})
        again = browser_capture(db_path, run_id, tmp_path, ["127.0.0.0/8"], "auto",
                                ports["http_port"], ports["https_port"])
        # killed before the site's pages were stored: captured again, from the WARC
        with sqlite3.connect(db_path) as conn:
            conn.execute("DELETE FROM pages WHERE id IN (SELECT page_id FROM page_sources "
                         "WHERE source = 'browser')")
            conn.execute("DELETE FROM page_sources WHERE source = 'browser'")
        since = len(lab.web.requests)
        recaptured = browser_capture(db_path, run_id, tmp_path, ["127.0.0.0/8"], "auto",
                                     ports["http_port"], ports["https_port"])
        refetched = lab.web.requests[since:]
    finally:
        lab.stop()
    assert recaptured.sites == ["arirang.com.kp"] and recaptured.records > 0, recaptured
    assert refetched == []  # every response was in the WARC of the attempt cut short
    assert static == [(0,)]  # the static crawl sees an empty frame and no links
    assert rows(db_path, BROWSER_PAGES) == browsed
    assert rows(db_path, ARIRANG_PAGES) == sites
    # tongil.com.kp ends at its page budget: resumed, its budget is what was spent (requests
    # that left no row included), so it gains no page
    assert rows(db_path, "SELECT domain, pages FROM sites ORDER BY domain") == budget
    assert rows(db_path, "SELECT count(*) FROM pages") == crawled
    assert rows(db_path, "SELECT count(*) FROM pages WHERE url LIKE '%article.html?id=%' AND "
                "id NOT IN (SELECT page_id FROM page_sources)") == [(0,)]  # browser links
    assert again.sites == ["arirang.com.kp"] and again.records == 0, again
    assert result.sites == ["arirang.com.kp"], result  # auto: only the thin scripted site
    found = dict(rows(db_path, "SELECT url, text FROM pages JOIN page_sources ON page_id = id "
                      "WHERE source = 'browser'"))
    articles = {u.split("?id=")[1]: t for u, t in found.items() if "?id=" in u}
    assert set(articles) == {"1", "2", "3"}
    assert "May Day Stadium" in articles["1"] and "Kuryong Falls" in articles["2"]
    assert not [u for u in found if ":" in u.split("//")[1].split("/")[0]]  # no lab port
    from warcio.archiveiterator import ArchiveIterator

    captured = set()
    for path in (tmp_path / "warc").glob("*-browser-*.warc.gz"):
        with path.open("rb") as fh:
            captured |= {r.rec_headers.get_header("WARC-Target-URI")
                         for r in ArchiveIterator(fh) if r.rec_type == "response"}
    paths = {u.split("arirang.com.kp", 1)[1] for u in captured}
    assert {"/api/articles.json", "/api/article/2.json", "/css/app.css", "/img/paper.png",
            "/img/logo.png", "/js/app.js"} <= paths
    assert "pages/min" in result.message()
    replays_in_pywb(tmp_path, sorted((tmp_path / "warc").glob("*-browser-*.warc.gz")))


def replays_in_pywb(folder: Path, warcs: list[Path]) -> None:
    """pywb serves the browser's capture: the frame, the JSON it fetched, styles, images."""
    import subprocess
    import sys

    from crawler.lab import free_port
    from tests.crawl.test_replay import get, pywb, wait_listening

    archive = folder / "pywb"
    archive.mkdir()
    pywb(archive, "init", "browser")
    pywb(archive, "add", "browser", *map(str, warcs))
    port = free_port(["127.0.0.1"])
    server = subprocess.Popen(
        [sys.executable, "-c", "from pywb.apps.cli import wayback; wayback()",
         "-p", str(port), "-b", "127.0.0.1", "-d", str(archive)],
        cwd=archive, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port, server)
        base = f"http://127.0.0.1:{port}/browser/2030id_"
        for host in ("arirang.com.kp", "www.arirang.com.kp"):
            status, _, body = get(f"{base}/http://{host}/api/article/2.json")
            if status == 200:
                break
        assert status == 200 and b"Kuryong Falls" in body
        for path, marker in (("/css/app.css", b"background"), ("/img/logo.png", b"PNG"),
                             ("/article.html?id=2", b"app.js")):
            status, _, body = get(f"{base}/http://{host}{path}")
            assert status == 200 and marker in body, path
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_script_found_pages_the_crawl_found_empty_are_rendered(tmp_path: Path) -> None:
    """``auto``'s second trigger: samjiyon's home page has its text, but the stories its
    scripts lead to are empty frames filled by fetch(); kcna's script-found articles have
    their text, so kcna needs no browser."""
    from crawler.crawl.browser import empty_script_pages, sites_needing_browser

    world = load_world("kp")
    lab, ports = start_lab(world)
    db_path = tmp_path / "census.db"
    run_id = census_from_world(db_path, world, ["samjiyon.com.kp", "kcna.kp"])
    try:
        crawl_run(str(db_path), run_id, str(tmp_path), ["127.0.0.0/8"], {**FAST, **ports})
        needed = sites_needing_browser(db_path, run_id, "auto")
        empty = empty_script_pages(db_path, run_id)
        result = browser_capture(db_path, run_id, tmp_path, ["127.0.0.0/8"], "auto",
                                 ports["http_port"], ports["https_port"])
    finally:
        lab.stop()
    static = dict(rows(db_path, "SELECT url, coalesce(text, '') FROM pages WHERE url LIKE "
                      "'%story.html?no=%' AND id NOT IN (SELECT page_id FROM page_sources)"))
    assert {u.split("no=")[1] for u in static} == {"1", "2&section=nature", "3"}
    # the crawl saw empty frames: no story's text
    assert not [t for t in static.values() if any(w in t for w in ("snow", "larch", "saws"))]
    assert [d for d, _ in needed] == ["samjiyon.com.kp"]
    assert sorted(empty) == ["samjiyon.com.kp"] and len(empty["samjiyon.com.kp"]) == 3
    assert result.sites == ["samjiyon.com.kp"], result
    rendered = dict(rows(db_path, "SELECT url, text FROM pages JOIN page_sources ON "
                         "page_id = id WHERE source = 'browser' AND url LIKE '%story%'"))
    texts = " ".join(rendered.values())
    for title in ("Houses finished before the snow", "Lake Samji in autumn",
                  "A timber mill doubles its output"):
        assert title in texts, rendered
