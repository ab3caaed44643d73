"""The crawl's WARC files replay in pywb: an archivist's check that they are standard WARC.

Two lab sites are crawled twice into one census, so the second run writes ``revisit`` records;
pywb indexes both runs' files into a collection and serves them on a loopback port.  A page is
replayed in ``id_`` mode (the original bytes) from the first run's ``response`` record and from
the second run's ``revisit``, which pywb must resolve to the first run's payload.
"""

from __future__ import annotations

import importlib.util
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from crawler.crawl import crawl_run
from crawler.export import export_wacz, validate_wacz
from crawler.lab import free_port, load_world
from tests.crawl.test_crawl import FAST, start_lab
from tests.crawlhelp import census_from_world

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("pywb") is None, reason="pywb is not installed (test extra)"
    ),
]

SITES = ["kcna.kp", "rodong.rep.kp"]
HOME = "http://rodong.rep.kp/"
COLLECTION = "census"


def pywb(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``wb-manager ARGS`` in ``folder``, through this interpreter (no PATH assumptions)."""
    return subprocess.run(
        [sys.executable, "-c", "from pywb.manager.manager import main; main()", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def wait_listening(port: int, process: subprocess.Popen[bytes], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"wayback exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"wayback did not listen on 127.0.0.1:{port} in {seconds} s")


def captures(warc_dir: Path, url: str) -> dict[str, str]:
    """WARC record type (``response``, ``revisit``) -> 14-digit timestamp, for ``url``."""
    from warcio.archiveiterator import ArchiveIterator

    found: dict[str, str] = {}
    for path in sorted(warc_dir.glob("*.warc.gz")):
        with path.open("rb") as fh:
            for record in ArchiveIterator(fh):
                if record.rec_headers.get_header("WARC-Target-URI") != url:
                    continue
                if record.rec_type in ("response", "revisit"):
                    date = record.rec_headers.get_header("WARC-Date")
                    found[record.rec_type] = "".join(c for c in date if c.isdigit())[:14]
    return found


class Replay(NamedTuple):
    base: str  # the collection on the running pywb
    wacz_base: str  # the second run's WACZ as a collection of its own
    found: dict[str, str]  # record type -> timestamp of the rodong.rep.kp home page
    db_path: Path
    warc_dir: Path


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replay]:
    """Two crawls of two lab sites, their WARCs in a pywb collection served on loopback."""
    folder = tmp_path_factory.mktemp("replay")
    world = load_world("kp")
    lab, ports = start_lab(world)
    db_path = folder / "census.db"
    try:
        for _ in range(2):
            run_id = census_from_world(db_path, world, SITES)
            result = crawl_run(
                str(db_path), run_id, str(folder), ["127.0.0.0/8"], {**FAST, **ports}
            )
            assert result.finish_reason == "finished"
            time.sleep(1.1)  # WARC-Date has seconds: the two captures get two timestamps
    finally:
        lab.stop()
    warcs = sorted(str(p) for p in (folder / "warc").glob("*.warc.gz"))
    assert len(warcs) == 2
    archive = folder / "pywb"
    archive.mkdir()
    pywb(archive, "init", COLLECTION)
    pywb(archive, "add", COLLECTION, *warcs)
    # the second run as one WACZ: its own WARC and the first run's, which its revisits need
    package = export_wacz(db_path, run_id, folder)
    assert (package.warcs, validate_wacz(package.path)[0]) == (2, True)
    pywb(archive, "init", "wacz")
    pywb(archive, "add", "--unpack-wacz", "wacz", str(package.path))
    port = free_port(["127.0.0.1"])
    server = subprocess.Popen(
        [sys.executable, "-c", "from pywb.apps.cli import wayback; wayback()",
         "-p", str(port), "-b", "127.0.0.1", "-d", str(archive)],
        cwd=archive,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(port, server)
        base = f"http://127.0.0.1:{port}/{COLLECTION}"
        yield Replay(base, f"http://127.0.0.1:{port}/wacz", captures(folder / "warc", HOME),
                     db_path, folder / "warc")
    finally:
        server.terminate()
        server.wait(timeout=10)


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_second_run_wrote_a_revisit_of_the_first(
    replay: Replay,
) -> None:
    found = replay.found
    assert set(found) == {"response", "revisit"}
    assert found["revisit"] > found["response"]


def test_captured_page_replays_with_its_original_bytes(
    replay: Replay,
) -> None:
    base, found = replay.base, replay.found
    status, headers, body = get(f"{base}/{found['response']}id_/{HOME}")
    assert status == 200
    assert "euc-kr" in headers.get("Content-Type", "").lower()
    text = body.decode("euc-kr")
    assert "로동신문" in text


def test_revisit_replays_the_payload_it_refers_to(replay: Replay) -> None:
    base, found = replay.base, replay.found
    status, headers, body = get(f"{base}/{found['revisit']}id_/{HOME}")
    assert status == 200
    memento = headers.get("Memento-Datetime", "")
    assert memento, headers
    original = get(f"{base}/{found['response']}id_/{HOME}")[2]
    assert body == original
    assert "로동신문" in body.decode("euc-kr")


def test_replayed_captures_are_the_ones_asked_for(replay: Replay) -> None:
    """pywb serves the revisit's own capture time, not the original's: the revisit record was
    indexed and used, not merely the nearest response."""
    from email.utils import parsedate_to_datetime

    base, found = replay.base, replay.found
    for kind in ("response", "revisit"):
        _, headers, _ = get(f"{base}/{found[kind]}id_/{HOME}")
        when = parsedate_to_datetime(headers["Memento-Datetime"]).strftime("%Y%m%d%H%M%S")
        assert when == found[kind], kind


def test_census_rows_point_at_the_replayed_records(replay: Replay) -> None:
    """The second run's page row is a revisit of the first's, at the revisit record's place."""
    from warcio.archiveiterator import ArchiveIterator

    conn = sqlite3.connect(replay.db_path)
    try:
        rows = conn.execute(
            "SELECT id, run_id, revisit_of, warc_file, warc_offset FROM pages WHERE url = ? "
            "ORDER BY run_id",
            [HOME],
        ).fetchall()
    finally:
        conn.close()
    (first, _, no_revisit, _, _), (_, _, revisit_of, warc_file, offset) = rows
    assert no_revisit is None and revisit_of == first
    with (replay.warc_dir / warc_file).open("rb") as fh:
        fh.seek(offset)
        record = next(iter(ArchiveIterator(fh)))
    assert record.rec_type == "revisit"
    assert record.rec_headers.get_header("WARC-Refers-To-Target-URI") == HOME


def test_the_runs_wacz_validates_and_replays(replay: Replay) -> None:
    """``census export --wacz``: the package passes ``wacz validate`` (in the fixture) and
    pywb replays from it the second run's revisit with the first run's payload."""
    status, _, body = get(f"{replay.wacz_base}/{replay.found['revisit']}id_/{HOME}")
    assert status == 200
    assert "로동신문" in body.decode("euc-kr")
