"""The crawl's writer process (``crawler/crawl/writer.py``) killed mid-crawl: the crawl says so
and resumes itself, ending with the rows of a crawl that was not cut (a writer that keeps
dying stops it); whether it only writes, or analyses the pages too (a crawl with analysis
workers), it stores what the crawl process would.

The kill lands while pages are being stored: what the writer had committed stays, what it had
not answered for is lost with it, and the resumed crawl reads back from the WARC, or fetches
again, the rest.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from crawler.crawl import crawl_run
from crawler.lab import load_world
from tests.crawl.test_crawl import FAST, start_lab
from tests.crawlhelp import census_from_world, rows

PAGES = "SELECT url, http_status, sha256 FROM pages ORDER BY url"
CONTENT = ("SELECT p.url, p.http_status, p.sha256, p.content_type, p.charset, p.title,"
           " coalesce(p.text, (SELECT r.text FROM pages r WHERE r.id = p.revisit_of)),"
           " p.lang, p.lang_confidence, p.lang_source, p.description, p.headings, p.site_name,"
           " p.schema_types, p.decode_error, p.extract_error, p.depth,"
           " (SELECT group_concat(to_url || ' ' || how || ' ' || coalesce(anchor, ''), '|')"
           " FROM (SELECT * FROM links l WHERE l.page_id = p.id ORDER BY to_url, how))"
           " FROM pages p ORDER BY p.url")
"""What a page's row says of it, with its links: the same however the crawl ran.  Two fetches
of one URL (the http and https start URLs redirected to one page) race for which is stored
first, the other a revisit whose text is the first's; which page followed a link is the bare
and www. hosts' race."""
SITE = ["tongil.com.kp"]  # 150 numbered articles and their index pages: a few hundred pages
KILL_AT = 30


def writer_of_our_crawl() -> int | None:
    """The pid of the writer process of this test's crawl (its parent's parent is us): other
    people's crawls may run on the machine too."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if b"crawler.crawl.writer" not in (entry / "cmdline").read_bytes():
                continue
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            grandparent = int(Path(f"/proc/{parent}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if grandparent == os.getpid():
            return int(entry.name)
    return None


def kill_writer_after(db_path: Path, pages: int, killed: list[int], times: int = 1,
                      done: threading.Event | None = None) -> None:
    """Kill the writer of our crawl once ``pages`` pages are stored, ``times`` times (each
    resumed crawl's writer once it stored five pages of its own), or until ``done``."""
    deadline = time.monotonic() + 60
    seen: dict[int, int] = {}  # a writer's pid: the pages stored when it was first seen
    dead: set[int] = set()
    while time.monotonic() < deadline and len(killed) < times:
        if done is not None and done.is_set():
            return
        try:
            with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5) as conn:
                stored = conn.execute("SELECT count(*) FROM pages").fetchone()[0]
        except sqlite3.OperationalError:
            stored = 0
        pid = writer_of_our_crawl()
        first = seen.setdefault(pid, stored) if pid is not None else 0
        if pid is not None and pid not in dead and stored >= pages and (
                not killed or stored >= first + 5):
            dead.add(pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed.append(stored)
        time.sleep(0.01)


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 1], ids=["writing", "analysing-and-writing"])
def test_a_killed_writer_is_resumed_at_once_and_loses_nothing(
    tmp_path: Path, workers: int, caplog: pytest.LogCaptureFixture,
) -> None:
    world = load_world("kp")
    lab, ports = start_lab(world)
    options = {**FAST, "max_pages": 400, **ports, "extract_workers": workers}
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    try:
        whole.mkdir()
        run_id = census_from_world(whole / "census.db", world, SITE)
        crawl_run(str(whole / "census.db"), run_id, str(whole), ["127.0.0.0/8"], options)

        cut.mkdir()
        db_path = cut / "census.db"
        run_id = census_from_world(db_path, world, SITE)
        killed: list[int] = []
        killer = threading.Thread(target=kill_writer_after, args=(db_path, KILL_AT, killed))
        killer.start()
        with caplog.at_level(logging.WARNING, logger="crawler.crawl"):
            crawl_run(str(db_path), run_id, str(cut), ["127.0.0.0/8"], options)
        killer.join()
    finally:
        lab.stop()
    expected = pages(whole / "census.db")
    assert killed and KILL_AT <= killed[0] < len(expected), (killed, len(expected))
    assert "writer process died: resuming the crawl (1 of 2)" in caplog.text
    resumed = pages(db_path)
    urls = rows(db_path, "SELECT url FROM pages")
    assert len(set(urls)) == len(urls)  # no page stored twice
    assert not Counter(expected) - Counter(resumed)  # none lost
    # the endless counter's chain is counted anew by a resumed crawl (a trap rule's state is
    # not recalled), so it may go a link or two further: nothing else differs
    assert all("/archive/" in key[0] for key in Counter(resumed) - Counter(expected))
    assert rows(db_path, "SELECT count(*), count(warc_offset), count(text) FROM pages") == [
        (len(resumed), len(resumed), len(resumed))]


@pytest.mark.slow
def test_a_writer_that_keeps_dying_stops_the_crawl(tmp_path: Path) -> None:
    world = load_world("kp")
    lab, ports = start_lab(world)
    db_path = tmp_path / "census.db"
    run_id = census_from_world(db_path, world, SITE)
    killed: list[int] = []
    done = threading.Event()
    killer = threading.Thread(target=kill_writer_after,
                              args=(db_path, KILL_AT, killed, 99, done))
    killer.start()
    try:
        with pytest.raises(RuntimeError, match="writer process died 3 times"):
            crawl_run(str(db_path), run_id, str(tmp_path), ["127.0.0.0/8"],
                      {**FAST, "max_pages": 400, **ports})
    finally:
        done.set()
        killer.join()
        lab.stop()
    assert len(killed) == 3


def pages(db_path: Path, query: str = PAGES) -> list[tuple[object, ...]]:
    """The pages of a crawl as a site's pages: its bare and www. hosts serve one site, and
    which of them claims a path first is a race."""
    return [tuple(v.replace("://www.", "://") if isinstance(v, str) else v for v in row)
            for row in rows(db_path, query)]


WAYS = {
    "writing": {},  # the pages analysed in the crawl process (a short crawl)
    "analysing": {"extract_workers": 1},  # the writer process analyses them too
}


@pytest.mark.slow
def test_a_writer_that_analyses_stores_what_the_crawl_process_analyses(tmp_path: Path) -> None:
    """A writer process that analyses the pages keeps their text for their rows: the rows are
    those of the analysis in the crawl process, every page pointing at its response record."""
    from warcio.archiveiterator import ArchiveIterator

    world = load_world("kp")
    lab, ports = start_lab(world)
    found = {}
    try:
        for writer, options in WAYS.items():
            folder = tmp_path / writer
            folder.mkdir()
            run_id = census_from_world(folder / "census.db", world, ["kcna.kp", "minju.com.kp"])
            crawl_run(str(folder / "census.db"), run_id, str(folder), ["127.0.0.0/8"],
                      {**FAST, **ports, **options})
            located = rows(folder / "census.db", "SELECT warc_file, warc_offset, url FROM pages")
            for warc_file, offset, url in located:
                with open(folder / "warc" / warc_file, "rb") as fh:
                    fh.seek(offset)
                    record = next(iter(ArchiveIterator(fh)))
                    assert record.rec_headers.get_header("WARC-Target-URI") == url
            found[writer] = (sorted(pages(folder / "census.db", CONTENT), key=repr), rows(
                folder / "census.db",
                "SELECT domain, url, http_status, alive FROM sites ORDER BY domain"))
    finally:
        lab.stop()
    assert found["writing"] == found["analysing"]
    assert len(found["writing"][0]) > 10
    assert sum(1 for page in found["analysing"][0] if page[6]) > 10  # texts kept
