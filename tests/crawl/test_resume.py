"""A resumed crawl reads from the run's WARC what the kill kept from reaching the census.

A site is crawled; then the census loses its last pages, as when the crawl is killed after
their responses were written to the WARC but before their rows were committed.  The resumed
crawl answers those requests from the WARC: the lab's web log shows no page fetched again,
and the rows are those of the crawl that was not cut.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from crawler.crawl import crawl_run
from crawler.lab import load_world
from tests.crawl.test_crawl import FAST, start_lab
from tests.crawlhelp import census_from_world

PAGES = "SELECT url, http_status, sha256, depth, request_url FROM pages ORDER BY url"
LOST = "SELECT id FROM pages WHERE depth > 0 ORDER BY id DESC LIMIT 3"


def rows(db_path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db_path) as conn:
        return conn.execute(sql).fetchall()


def test_a_resumed_crawl_reads_what_the_warc_holds_instead_of_fetching_it(
    tmp_path: Path,
) -> None:
    world = load_world("kp")
    lab, ports = start_lab(world)
    db_path = tmp_path / "census.db"
    run_id = census_from_world(db_path, world, ["kcna.kp"])
    try:
        crawl_run(str(db_path), run_id, str(tmp_path), ["127.0.0.0/8"], {**FAST, **ports})
        pages = rows(db_path, PAGES)
        sites = rows(db_path, "SELECT domain, pages, alive FROM sites")
        lost = [i for (i,) in rows(db_path, LOST)]
        with sqlite3.connect(db_path) as conn:
            marks = ", ".join("?" * len(lost))
            conn.execute(f"DELETE FROM links WHERE page_id IN ({marks})", lost)
            conn.execute(f"DELETE FROM pages WHERE id IN ({marks})", lost)
        since = len(lab.web.requests)
        crawl_run(str(db_path), run_id, str(tmp_path), ["127.0.0.0/8"],
                  {**FAST, **ports, "resume": True})
        fetched = [r for r in lab.web.requests[since:] if not r[2].endswith("/robots.txt")]
    finally:
        lab.stop()
    assert len(lost) == 3 and len(pages) > 3
    assert fetched == []
    assert rows(db_path, PAGES) == pages
    assert rows(db_path, "SELECT domain, pages, alive FROM sites") == sites
