"""Datasette on a census of the lab world: views, full-text search in Korean, documented schema.

One whole ``run_census`` of the lab (probe, crawl, screenshots, classify, compare) is built
once per session on disk (``lab_census``) and shared with the report and screenshot tests.
Datasette is driven through its Python API (``ds.client``), as its own tests do.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from crawler.census import STAGES, CensusOptions, run_census
from crawler.db import open_census
from crawler.lab import Lab, free_port, load_world
from crawler.serve import UndocumentedSchema, build_metadata, datasette_app, missing_descriptions
from tests.crawlhelp import rows

pytest.importorskip("datasette")

LAB_NET = "127.0.0.0/8"


def build_lab_census(base: Path) -> tuple[Path, int]:
    """A census of the lab world, made once per session under ``base``: (db path, run id)."""
    folder = base / "lab_census"
    done = folder / "run_id"
    if done.is_file():
        return folder / "census.db", int(done.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    world = load_world("kp")
    ports = {name: free_port(world.addresses()) for name in ("dns", "http", "https")}
    options = CensusOptions(
        zone="kp",
        db_path=str(folder / "census.db"),
        out_dir=str(folder),
        resolvers=(f"{world.resolver_address}:{ports['dns']}",),
        ns_port=ports["dns"],
        seeds=False,
        ip_ranges=("127.45.176.0/22",),
        allow_nets=(LAB_NET,),
        qps=500,
        crawl={"http_port": ports["http"], "https_port": ports["https"], "delay": 0,
               "download_timeout": 3, "max_pages": 30},
    )
    stages = list(STAGES)
    if shutil.which("chromium"):
        stages.insert(stages.index("crawl") + 1, "screenshots")
    with Lab(world, ports["dns"], ports["http"], ports["https"]):
        run_id = run_census(options, stages)
    done.write_text(str(run_id))
    return folder / "census.db", run_id


@pytest.fixture(scope="session")
def lab_census(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    return build_lab_census(tmp_path_factory.getbasetemp())


def get(db_path: Path, path: str) -> Any:
    """GET ``path`` from Datasette on the census; the JSON, or the response if not JSON."""

    async def fetch() -> Any:
        ds = datasette_app(db_path)
        response = await ds.client.get(path)
        assert response.status_code == 200, (path, response.status_code, response.text[:500])
        if "json" in response.headers.get("content-type", ""):
            return response.json()
        return response

    return asyncio.run(fetch())


def test_every_table_and_column_of_the_schema_is_described(tmp_path: Path) -> None:
    db = open_census(tmp_path / "census.db")
    db.close()
    assert missing_descriptions(tmp_path / "census.db") == []


def test_an_undocumented_column_is_refused(tmp_path: Path) -> None:
    db = open_census(tmp_path / "census.db")
    db["sites"].add_column("favourite_colour", str)
    db.close()
    assert missing_descriptions(tmp_path / "census.db") == ["sites.favourite_colour"]
    with pytest.raises(UndocumentedSchema, match=r"sites\.favourite_colour"):
        build_metadata(tmp_path / "census.db")


def test_metadata_names_the_zone_and_describes_tables(lab_census: tuple[Path, int]) -> None:
    db_path, _ = lab_census
    metadata = get(db_path, "/-/metadata.json")
    assert metadata["title"] == "ccTLD Census of .kp"
    tables = metadata["databases"]["census"]["tables"]
    assert "outcome" in tables["axfr_attempts"]["columns"]
    assert "refused" in tables["axfr_attempts"]["columns"]["outcome"]
    page = get(db_path, "/census/axfr_attempts")
    assert "Every zone transfer (AXFR) tried" in page.text


def test_latest_census_returns_one_row_per_domain(lab_census: tuple[Path, int]) -> None:
    db_path, run_id = lab_census
    data = get(db_path, "/census/latest_census.json?_shape=array&_size=max")
    by_domain = {row["domain"]: row for row in data}
    seen = {d for (d,) in rows(db_path, "SELECT DISTINCT domain FROM sightings "
                                         "WHERE run_id = ? AND domain IS NOT NULL", run_id)}
    assert set(by_domain) == seen
    alive = {d for (d,) in rows(db_path, "SELECT domain FROM sites WHERE run_id = ? AND alive",
                                run_id)}
    assert {d for d, row in by_domain.items() if row["alive"]} == alive
    kcna = by_domain["kcna.kp"]
    assert kcna["run_id"] == run_id
    assert kcna["purpose"] == "news_media"
    assert "axfr" in kcna["found_by"].split()
    assert kcna["first_seen_run"] == kcna["last_seen_run"] == run_id
    assert kcna["address"].startswith("127.45.")
    assert by_domain["ma.gov.kp"]["alive"] == 0


def test_korean_full_text_search_finds_words_with_particles(
    lab_census: tuple[Path, int],
) -> None:
    db_path, _ = lab_census
    with_particle = {
        domain
        for domain, text in rows(db_path, "SELECT domain, coalesce(text, '') || ' ' || "
                                          "coalesce(title, '') FROM pages")
        if "평양에서" in text
    }
    assert with_particle
    # the search box of the pages table (searchmode raw): a prefix finds 평양에서 and 평양의
    found = get(db_path, "/census/pages.json?_search=" + "평양*" + "&_shape=array&_size=max")
    assert with_particle <= {row["domain"] for row in found}
    assert all("평양" in (row["text"] or "") + (row["title"] or "") for row in found)
    # the canned query needs no star
    canned = get(db_path, "/census/search_pages.json?q=평양&_shape=array")
    assert with_particle <= {row["domain"] for row in canned}
    assert get(db_path, "/census/pages.json?_search=Pyongyang&_shape=array")


def test_canned_queries_answer(lab_census: tuple[Path, int]) -> None:
    db_path, run_id = lab_census
    transfers = get(db_path, "/census/open_zone_transfers.json?_shape=array")
    assert {"127.45.176.16", "127.45.176.9"} <= {row["address"] for row in transfers}
    answer = get(db_path, "/census/languages.json?run=&_shape=array")
    languages = {row["lang"]: row for row in answer}
    assert languages["ko"]["sites"] >= 3 and languages["en"]["sites"] >= 3
    new = get(db_path, "/census/new_sites.json?run=&_shape=array")
    assert {row["domain"] for row in new} >= {"kcna.kp"}
    assert get(db_path, "/census/sites_came_back.json?run=&_shape=array") == []
    assert get(db_path, f"/census/axfr_history.json?run_id={run_id}&_shape=array")


@pytest.mark.skipif(not shutil.which("chromium"), reason="needs Debian's chromium")
def test_screenshots_are_shown_and_served(lab_census: tuple[Path, int]) -> None:
    db_path, _ = lab_census
    page = get(db_path, "/census/latest_census?domain=kcna.kp")
    assert '<img src="/screenshots/run' in page.text
    image = get(db_path, "/census/sites.json?domain=kcna.kp&_shape=array")[0]["screenshot"]
    png = get(db_path, "/" + image)
    assert png.headers["content-type"] == "image/png"
    assert png.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_census_serve_starts_datasette_read_only(lab_census: tuple[Path, int]) -> None:
    db_path, _ = lab_census
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    before = db_path.stat().st_mtime_ns
    server = subprocess.Popen(
        [sys.executable, "-c", "from crawler.cli import cli; cli()", "serve",
         "--db", str(db_path), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}/census/latest_census.json?_shape=array&domain=kcna.kp"
        for _ in range(100):
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    data = json.load(response)
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail(server.stderr.read().decode() if server.poll() is not None else "no answer")
        assert data[0]["domain"] == "kcna.kp"
    finally:
        server.terminate()
        server.wait(10)
    assert db_path.stat().st_mtime_ns == before
