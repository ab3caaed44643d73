"""Datasette on a census of the lab world: views, full-text search in Korean, documented schema.

One whole ``run_census`` of the lab (probe, crawl, screenshots, classify, compare) is built
once per session on disk (``lab_census``) and shared with the report and screenshot tests.
Datasette is driven through its Python API (``ds.client``), as its own tests do.
"""

from __future__ import annotations

import asyncio
import json
import re
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
from crawler.crawl.extract import extract
from crawler.db import open_census
from crawler.lab import Lab, free_port, load_world
from crawler.serve import UndocumentedSchema, build_metadata, datasette_app, missing_descriptions
from tests.crawlhelp import rows

pytest.importorskip("datasette")
from urllib.parse import quote

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
    # the search box of the pages table: 평양 finds 평양에서 and 평양의, as 평양* still does
    for query in ("평양", "평양*"):
        found = get(db_path, f"/census/pages.json?_search={quote(query)}&_shape=array&_size=max")
        assert with_particle <= {row["domain"] for row in found}
        assert all("평양" in (row["text"] or "") + (row["title"] or "") for row in found)
    canned = get(db_path, "/census/search_pages.json?q=평양&_shape=array")
    assert with_particle <= {row["domain"] for row in canned}
    assert get(db_path, "/census/pages.json?_search=Pyongyang&_shape=array")
    # the crawl's pipeline wrote the search form: 사랑 is found inside 사랑하는 and 사랑의
    sarang = {url for url, text in rows(db_path, "SELECT url, text FROM pages")
              if "사랑" in (text or "")}
    assert len(sarang) >= 2
    found = get(db_path, f"/census/pages.json?_search={quote('사랑')}&_shape=array&_size=max")
    assert {row["url"] for row in found} == sarang


def build_page_census(path: Path) -> Path:
    """A census holding every HTML page of the lab world, as the crawl extracts it, written
    through the database API (no crawl): the search tests' census."""
    world = load_world("kp")
    db = open_census(path)
    db["runs"].insert({"id": 1, "zone": "kp", "status": "complete"})
    for site in sorted(p for p in world.sites_root.iterdir() if p.is_dir()):
        db["domains"].insert({"name": site.name, "suffix": site.name.split(".", 1)[1]})
        for file in sorted(site.rglob("*.htm*")) + sorted(site.rglob("*.kcmsf")):
            url = f"http://{site.name}/{file.relative_to(site).as_posix()}"
            page = extract(file.read_bytes(), url)
            db["pages"].insert({"run_id": 1, "domain": site.name, "url": url,
                                "title": page.title, "lang": page.lang, "text": page.text})
    db.close()
    return path


@pytest.fixture(scope="module")
def page_census(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_page_census(tmp_path_factory.mktemp("pages") / "census.db")


def pages_with(db_path: Path, word: str) -> set[str]:
    """URLs of the pages whose title or text has ``word``, by a LIKE scan."""
    return {url for (url,) in rows(db_path, "SELECT url FROM pages WHERE coalesce(title, '') "
                                            "|| ' ' || coalesce(text, '') LIKE ?", f"%{word}%")}


def searched(db_path: Path, query: str) -> set[str]:
    """URLs the pages table's search (the box, ``?_search=``) finds for ``query``."""
    found = get(db_path, f"/census/pages.json?_search={quote(query)}&_shape=array&_size=max")
    return {row["url"] for row in found}


@pytest.mark.parametrize(
    "word", ["사랑", "평양", "조선중앙통신", "经济", "朝鲜", "ポータル", "政治"]
)
def test_search_finds_exactly_the_pages_with_a_korean_chinese_or_japanese_word(
    page_census: Path, word: str
) -> None:
    expected = pages_with(page_census, word)
    assert expected
    assert searched(page_census, word) == expected
    canned = get(page_census, f"/census/search_pages.json?q={quote(word)}&_shape=array")
    assert {row["url"] for row in canned} == expected
    texts = dict(rows(page_census, "SELECT url, text FROM pages"))
    assert all(f"[{word}]" in row["snippet"] for row in canned if word in texts[row["url"]])


def test_a_two_syllable_noun_is_found_inside_longer_words(page_census: Path) -> None:
    texts = dict(rows(page_census, "SELECT url, text FROM pages"))
    found = searched(page_census, "사랑")
    inside = {m.group() for url in found for m in re.finditer(r"\w*사랑\w*", texts[url])}
    assert {"사랑하는", "사랑의", "사랑을"} <= inside
    faceted = get(page_census, "/census/pages.json?_search=사랑&_facet=domain&_size=0")
    assert sum(f["count"] for f in faceted["facet_results"]["domain"]["results"]) == len(found)


def test_an_english_word_finds_its_pages_and_no_more(page_census: Path) -> None:
    texts = rows(page_census, "SELECT url, coalesce(title, '') || ' ' || coalesce(text, '') "
                              "FROM pages")
    expected = {url for url, text in texts if re.search(r"\bpyongyang\b", text, re.I)}
    assert expected
    assert searched(page_census, "Pyongyang") == expected
    assert searched(page_census, "pyong*") >= expected
    assert searched(page_census, '"central news agency"') == pages_with(
        page_census, "Central News Agency")


@pytest.mark.parametrize("word", ["평양", "정치", "Pyongyang"])
def test_title_matches_come_first_in_search_pages(page_census: Path, word: str) -> None:
    answer = get(page_census, f"/census/search_pages.json?q={quote(word)}&_shape=array")
    in_title = [word in (row["title"] or "") for row in answer]
    assert any(in_title) and not all(in_title)
    assert in_title == sorted(in_title, reverse=True)


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
