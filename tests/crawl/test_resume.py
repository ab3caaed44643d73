"""A resumed crawl reads from the run's WARC what the kill kept from reaching the census.

A site is crawled; then the census loses its last pages, its start pages and their attempts,
as when the crawl is killed after their responses were written to the WARC but before their
rows were committed.  The resumed crawl answers those requests from the WARC (the start URLs'
certificates too, and robots.txt): the lab's web log shows no request at all, and the rows are
those of the crawl that was not cut.  The same holds in a second run, whose unchanged pages are
``revisit`` records of the first run's.  The site answers on its bare and ``www.`` hosts: which
of them claims a path first is a race, and a page the resumed crawl reaches through the other
host is answered from the capture the WARC holds (without that, about every other attempt
fetched pages again).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from crawler.crawl import crawl_run
from crawler.lab import load_world
from tests.crawl.test_crawl import FAST, start_lab
from tests.crawlhelp import census_from_world

PAGES = "SELECT url, http_status, sha256, depth, request_url FROM pages ORDER BY url, request_url"
LOST = ("SELECT id FROM pages WHERE run_id = ? AND (? OR id IN (SELECT id FROM pages "
        "WHERE run_id = ? AND depth > 0 ORDER BY id DESC LIMIT 3)) AND id NOT IN "
        "(SELECT page_id FROM page_sources WHERE source = 'browser')")
"""The pages a kill would lose: the browser capture comes after the crawl, its pages stay."""
SITES = ("SELECT domain, url, final_url, http_status, pages, alive, tls_issuer, tls_subject, "
         "tls_names, tls_not_before, tls_not_after FROM sites WHERE run_id = ?")


def rows(db_path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db_path) as conn:
        return conn.execute(sql).fetchall()


def cut(db_path: Path, run_id: int, everything: bool) -> list[int]:
    """Forget the run's last 3 pages, or ``everything`` it crawled (start URLs too), and
    its sites row, as a kill before their rows were committed would."""
    with sqlite3.connect(db_path) as conn:
        lost = [i for (i,) in conn.execute(LOST, [run_id, everything, run_id])]
        marks = ", ".join("?" * len(lost))
        for table in ("links", "page_sources"):
            conn.execute(f"DELETE FROM {table} WHERE page_id IN ({marks})", lost)
        conn.execute(f"DELETE FROM pages WHERE id IN ({marks})", lost)
        if everything:
            for table in ("site_attempts", "page_failures", "requisites"):
                conn.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
        conn.execute("DELETE FROM sites WHERE run_id = ?", [run_id])
    return lost


def test_a_resumed_crawl_reads_what_the_warc_holds_instead_of_fetching_it(
    tmp_path: Path,
) -> None:
    world = load_world("kp")
    lab, ports = start_lab(world)
    db_path = tmp_path / "census.db"
    found = []
    try:
        for everything in (True, False):  # run 2's unchanged pages revisit run 1's
            run_id = census_from_world(db_path, world, ["kcna.kp"])
            out = str(tmp_path)  # where the census finds the earlier run's WARC
            crawl_run(str(db_path), run_id, out, ["127.0.0.0/8"], {**FAST, **ports})
            pages = rows(db_path, PAGES.replace("ORDER", f"WHERE run_id = {run_id} ORDER"))
            sites = rows(db_path, SITES.replace("?", str(run_id)))
            lost = cut(db_path, run_id, everything)
            since = len(lab.web.requests)
            crawl_run(str(db_path), run_id, out, ["127.0.0.0/8"],
                      {**FAST, **ports, "resume": True})
            found.append((lab.web.requests[since:], lost, pages, sites, run_id))
    finally:
        lab.stop()
    for fetched, lost, pages, sites, run_id in found:
        assert len(lost) == (len(pages) if run_id == 1 else 3)
        assert sites[0][6]  # the start URL's certificate, read back from the WARC
        assert fetched == [], (run_id, fetched)  # no page, no start URL, no robots.txt
        assert rows(db_path, PAGES.replace("ORDER", f"WHERE run_id = {run_id} ORDER")) == pages
        assert rows(db_path, SITES.replace("?", str(run_id))) == sites
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM pages WHERE run_id = 2 "
                            "AND revisit_of IS NOT NULL").fetchone()[0] > 3
    # a start URL's certificate is written before its response: a kill between the two
    # cannot leave a response in the WARC that must be fetched again for its certificate
    assert certificates_first(tmp_path / "warc") >= 2  # one start URL per run


def certificates_first(folder: Path) -> int:
    """How many certificate records the crawl WARCs hold, each checked to come before the
    response (or revisit) it is about."""
    from warcio.archiveiterator import ArchiveIterator

    certified, seen = [], set()
    for path in sorted(folder.glob("census-run*.warc.gz")):
        if "-browser-" in path.name:
            continue
        with open(path, "rb") as fh:
            for record in ArchiveIterator(fh):
                headers = record.rec_headers
                if record.rec_type == "metadata":
                    certified.append(headers.get_header("WARC-Concurrent-To"))
                    assert certified[-1] not in seen, "the certificate came after its response"
                elif record.rec_type in ("response", "revisit"):
                    seen.add(headers.get_header("WARC-Record-ID"))
    assert set(certified) <= seen
    return len(certified)


def test_a_page_claimed_through_the_other_host_is_answered_from_its_capture(
    tmp_path: Path,
) -> None:
    """A site's bare and ``www.`` hosts serve one site and a page is requested once per site:
    the interrupted crawl fetched ``www.``'s ``/a`` and was killed before recording it; the
    resumed crawl reaches ``/a`` through the bare host first.  The page the WARC holds answers
    it (as fetched then, at its own URL), once; a path the WARC lacks is fetched."""
    from scrapy import Request

    from crawler.crawl.resume import WarcReplay
    from crawler.crawl.warc import WarcFiles

    files = WarcFiles(tmp_path / "warc", "census-run00001-20261205000000", {})
    files.write_exchange("http://www.x.kp/a", date="2026-12-05T00:00:00Z", ip="127.0.0.1",
                         request_line="GET /a HTTP/1.1", request_headers=[], status=200,
                         headers=[("Content-Type", "text/html")], body=b"<p>a</p>")
    files.close()
    replay = WarcReplay(str(tmp_path / "census.db"), 1, tmp_path / "warc")

    def ask(url: str, **meta: object) -> object:
        return replay.process_request(Request(url, meta={"census_site": "x.kp", **meta}))

    assert ask("http://x.kp/a", census_start=True) is None  # a start URL is its own
    response = ask("http://x.kp/a")
    assert response is not None
    assert (response.url, response.status, response.body) == (
        "http://www.x.kp/a", 200, b"<p>a</p>")
    assert ask("http://x.kp/a") is None  # one capture answers one request
    assert ask("http://x.kp/b") is None
