"""The crawl stage against the lab's web servers, over real sockets.

The census run is written from the lab world itself (``census_from_world``), so these tests do
not depend on the probe; the lab serves the sites on free loopback ports and the crawl reaches
them through the port map, as ``census run`` does with the flags ``census lab`` prints.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from crawler.census import run_stage
from crawler.crawl import crawl_run
from crawler.lab import Lab, World, free_port, load_world
from tests.crawlhelp import census_from_world, rows

FAST = {"delay": 0, "download_timeout": 3, "max_pages": 30}


def start_lab(world: World) -> tuple[Lab, dict[str, int]]:
    addresses = world.addresses()
    ports = {name: free_port(addresses) for name in ("dns", "http", "https")}
    lab = Lab(world, ports["dns"], ports["http"], ports["https"]).start()
    return lab, {"http_port": ports["http"], "https_port": ports["https"]}


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int, World]]:
    """One crawl of the whole lab world; the tests below read what it stored.  Its pages are
    analysed in a worker process (a crawl this short would not start one by itself)."""
    world = load_world("kp")
    lab, ports = start_lab(world)
    folder = tmp_path_factory.mktemp("crawl")
    db_path = folder / "census.db"
    run_id = census_from_world(db_path, world)
    try:
        result = crawl_run(str(db_path), run_id, str(folder), ["127.0.0.0/8"],
                           {**FAST, **ports, "extract_workers": 1})
    finally:
        lab.stop()
    assert result.finish_reason == "finished"
    yield db_path, run_id, world


def expected_alive(world: World) -> set[str]:
    import tomllib

    alive = set()
    for folder in Path(world.sites_root).iterdir():
        if not (folder / "site.toml").is_file():
            continue
        site = tomllib.loads((folder / "site.toml").read_text())
        if not (site.get("status", 200) >= 400 or site.get("hang") or site.get("reset_mid_body")):
            alive.add(folder.name)
    return alive


def test_sites_alive_and_dead_as_the_world_says(crawled: tuple[Path, int, World]) -> None:
    db_path, _, world = crawled
    alive = {d for (d,) in rows(db_path, "SELECT domain FROM sites WHERE alive = 1")}
    assert alive == expected_alive(world)
    dead = dict(rows(db_path, "SELECT domain, error FROM sites WHERE alive = 0"))
    assert "502" in dead["ma.gov.kp"]
    assert "no address" in dead["kptc.kp"] or "kptc.kp" not in dead
    assert dead["star.net.kp"]  # reset mid-body: an error, not a page


def test_sites_record_address_final_url_and_tls(crawled: tuple[Path, int, World]) -> None:
    db_path, _, world = crawled
    site = dict(
        zip(
            ["url", "final_url", "address", "http_status", "tls_subject", "tls_names", "server"],
            rows(
                db_path,
                "SELECT url, final_url, address, http_status, tls_subject, tls_names, server "
                "FROM sites WHERE domain = 'kcna.kp'",
            )[0],
            strict=True,
        )
    )
    assert site["address"] in world.resolve("kcna.kp", "A")
    assert site["final_url"].startswith("https://kcna.kp/")  # http -> https -> /kp/index.html
    assert site["http_status"] == 200
    assert "kcna.kp" in site["tls_names"]
    assert site["server"]


def test_pages_hold_text_language_and_warc_location(crawled: tuple[Path, int, World]) -> None:
    db_path, _, _ = crawled
    langs = {lang for (lang,) in rows(db_path, "SELECT DISTINCT lang FROM pages")}
    assert {"ko", "en", "zh", "ja", "ru", "es", "fr"} <= langs
    missing = rows(
        db_path,
        "SELECT url FROM pages WHERE warc_file IS NULL OR warc_offset IS NULL OR sha256 IS NULL",
    )
    assert missing == []


def test_euc_kr_site_text_is_correct_korean(crawled: tuple[Path, int, World]) -> None:
    db_path, _, _ = crawled
    charset, title, text = rows(
        db_path,
        "SELECT charset, title, text FROM pages WHERE domain = 'rodong.rep.kp' AND depth = 0",
    )[0]
    assert charset.replace("_", "-").lower() in ("euc-kr", "cp949")
    assert "로동신문" in title
    assert "\ufffd" not in text and "로동신문" in text


def test_kps_9566_site_is_recorded_as_undecodable(crawled: tuple[Path, int, World]) -> None:
    db_path, _, _ = crawled
    found = rows(
        db_path,
        "SELECT charset, text FROM pages WHERE domain = 'sdprk.org.kp' AND http_status = 200",
    )
    assert found
    for charset, text in found:
        assert charset == "KPS-9566"
        assert not text  # never mojibake


def test_javascript_navigation_articles_are_reached(crawled: tuple[Path, int, World]) -> None:
    db_path, _, _ = crawled
    js_links = rows(
        db_path,
        "SELECT to_url FROM links JOIN pages ON pages.id = links.page_id "
        "WHERE pages.domain = 'kcna.kp' AND links.how = 'js'",
    )
    assert js_links
    fetched = {u for (u,) in rows(db_path, "SELECT url FROM pages WHERE domain = 'kcna.kp'")}
    assert {u for (u,) in js_links} & fetched


def test_script_navigation_reaches_every_article(crawled: tuple[Path, int, World]) -> None:
    """minju.com.kp navigates only by its own scripts (functions in the page and in
    js/common.js, a select menu, forms, document.write): every page of it is captured."""
    db_path, _, world = crawled
    folder = Path(world.sites_root) / "minju.com.kp"
    expected = {"/" + p.relative_to(folder).as_posix() for p in folder.rglob("*.html")}
    expected = {"/" if p == "/index.html" else p for p in expected} - {
        "/archive/2015.html", "/archive/2016.html", "/archive/page2.html"} | {
        "/archive/view.html?year=2015", "/archive/view.html?year=2016",
        "/archive/list.html?page=2"}
    got = {}
    for url, text in rows(db_path, "SELECT url, text FROM pages WHERE domain = 'minju.com.kp' "
                          "AND http_status = 200"):
        parts = url.split("minju.com.kp", 1)[1]
        got[parts] = text
    assert expected <= set(got)
    assert all(got[p] for p in expected)
    (how,) = rows(db_path, "SELECT group_concat(DISTINCT how) FROM links JOIN pages "
                  "ON pages.id = links.page_id WHERE pages.domain = 'minju.com.kp'")[0]
    assert {"js", "form"} <= set(how.split(","))


def test_page_requisites_are_captured_with_a_row_each(crawled: tuple[Path, int, World]) -> None:
    """minju.com.kp's stylesheet, what it imports (a second stylesheet, a font, a background),
    its logo and its script are WARC records with a row each, and none of them is a page."""
    db_path, _, _ = crawled
    found = {url.split("minju.com.kp", 1)[1]: (kind, status, size, sha256, warc)
             for url, kind, status, size, sha256, warc in rows(
                 db_path, "SELECT url, kind, http_status, size, sha256, warc_file "
                 "FROM requisites WHERE domain = 'minju.com.kp'")}
    kinds = {path: v[0] for path, v in found.items()}
    assert kinds == {"/css/style.css": "stylesheet", "/css/fonts.css": "stylesheet",
                     "/fonts/minju.woff": "font", "/img/banner-bg.png": "image",
                     "/img/logo.png": "image", "/js/common.js": "script"}
    assert all(status == 200 and size and sha256 and warc
               for _, status, size, sha256, warc in found.values())
    pages = rows(db_path, "SELECT url FROM pages WHERE domain = 'minju.com.kp' AND "
                 "(url LIKE '%.png' OR url LIKE '%.css' OR url LIKE '%.woff')")
    assert pages == []


def test_calendar_trap_ends_within_the_budget(crawled: tuple[Path, int, World]) -> None:
    db_path, _, _ = crawled
    (pages,) = rows(db_path, "SELECT count(*) FROM pages WHERE domain = 'korfilm.com.kp'")[0]
    assert pages <= FAST["max_pages"]
    (calendar,) = rows(
        db_path,
        "SELECT count(*) FROM pages WHERE domain = 'korfilm.com.kp' AND url LIKE '%/calendar/%'",
    )[0]
    assert calendar >= 1


@pytest.mark.slow
def test_a_numbered_family_is_content_and_endless_chains_are_traps(tmp_path: Path) -> None:
    """150 numbered articles listed on index pages are taken whole; the endless counter and
    the calendar stop after a few links of their own, and the census says what was cut."""
    world = load_world("kp")
    lab, ports = start_lab(world)
    db_path = tmp_path / "census.db"
    run_id = census_from_world(db_path, world, ["tongil.com.kp", "korfilm.com.kp"])
    try:
        crawl_run(str(db_path), run_id, str(tmp_path), ["127.0.0.0/8"],
                  {**FAST, "max_pages": 400, **ports})
    finally:
        lab.stop()
    articles = rows(db_path, "SELECT count(*), count(text) FROM pages "
                    "WHERE url LIKE '%tongil.com.kp/news/AR%.html' AND http_status = 200")
    assert articles == [(150, 150)]
    archive = rows(db_path, "SELECT count(*) FROM pages WHERE url LIKE '%/archive/%'")[0][0]
    assert 1 <= archive <= 4  # the first page of the counter and three links of its chain
    months = {u.split("/calendar/")[1][:7] for (u,) in rows(
        db_path, "SELECT url FROM pages WHERE url LIKE '%/calendar/%'")}
    assert 1 <= len(months) <= 7  # the first month and three of its chain each way
    cut = dict(rows(db_path, "SELECT rule, count(*) FROM traps GROUP BY rule"))
    assert cut["endless-chain"] >= 2
    (found_on,) = rows(db_path, "SELECT found_on FROM traps WHERE url LIKE '%/archive/5/'")[0]
    assert found_on.endswith("tongil.com.kp/archive/4/")


def test_robots_txt_is_obeyed(crawled: tuple[Path, int, World]) -> None:
    db_path, _, world = crawled
    robots = (Path(world.sites_root) / "kass.org.kp" / "robots.txt").read_text()
    disallowed = [
        line.split(":", 1)[1].strip()
        for line in robots.splitlines()
        if line.lower().startswith("disallow:") and line.split(":", 1)[1].strip()
    ]
    assert disallowed
    urls = [u for (u,) in rows(db_path, "SELECT url FROM pages WHERE domain = 'kass.org.kp'")]
    assert urls
    assert not [u for u in urls for path in disallowed if u.split("kp", 1)[1].startswith(path)]


def test_every_warc_passes_warcio_check(crawled: tuple[Path, int, World]) -> None:
    db_path, _, _ = crawled
    files = sorted((db_path.parent / "warc").glob("*.warc.gz"))
    assert files
    check = subprocess.run(
        [sys.executable, "-m", "warcio.cli", "check", *map(str, files)],
        capture_output=True,
        text=True,
    )
    if "No module named warcio.cli" in check.stderr:
        check = subprocess.run(
            ["warcio", "check", *map(str, files)], capture_output=True, text=True
        )
    assert check.returncode == 0, check.stdout + check.stderr


def test_dns_answers_are_in_the_warc(crawled: tuple[Path, int, World]) -> None:
    from warcio.archiveiterator import ArchiveIterator

    db_path, _, world = crawled
    dns_records = {}
    for path in (db_path.parent / "warc").glob("*.warc.gz"):
        with path.open("rb") as fh:
            for record in ArchiveIterator(fh):
                uri = record.rec_headers.get_header("WARC-Target-URI") or ""
                if uri.startswith("dns:"):
                    dns_records[uri] = record.content_stream().read().decode()
    assert world.resolve("kcna.kp", "A")[0] in dns_records["dns:kcna.kp"]


@pytest.mark.slow
def test_no_allow_net_means_no_crawl_and_says_why(tmp_path: Path) -> None:
    world = load_world("kp")
    db_path = tmp_path / "census.db"
    run_id = census_from_world(db_path, world, ["kcna.kp", "rodong.rep.kp"])
    run_stage("crawl", str(db_path), run_id, {"out_dir": str(tmp_path)})
    errors = rows(db_path, "SELECT domain, alive, error FROM sites ORDER BY domain")
    assert [(d, a) for d, a, _ in errors] == [("kcna.kp", 0), ("rodong.rep.kp", 0)]
    assert all("not a globally routable address" in e for _, _, e in errors)
    (message,) = rows(db_path, "SELECT message FROM runs WHERE id = ?", run_id)[0]
    assert "not globally routable" in message and "--allow-net" in message
    assert rows(db_path, "SELECT count(*) FROM pages") == [(0,)]


def faults_world(folder: Path) -> World:
    """The kp world plus a host whose home page links to every fault endpoint of the lab."""
    from crawler.lab.world import _world_root

    root = folder / "world"
    shutil.copytree(_world_root("kp"), root)
    with (root / "zones" / "com.kp.zone").open("a") as zone:
        zone.write("\nfaults 300 IN A 127.45.178.99\n")
    site = root / "sites" / "faults.com.kp"
    site.mkdir()
    (site / "site.toml").write_text('purpose = "unknown"\n')
    faults = [
        "gzip-bomb",
        "big",
        "malformed",
        "loop",
        "to-private",
        "wrong-charset",
        "reset",
        "unknown-charset",
        "bad-base",
        "control-chars",
    ]
    links = "".join(f'<a href="/_fault/{name}">{name}</a>\n' for name in faults)
    links += '<a href="/hostile.html">hostile scripts</a>\n'
    (site / "index.html").write_text(f"<html><title>Faults</title><body>{links}</body></html>")
    # the four hostile scripts, then a handler that works: each costs its bounds
    (site / "hostile.html").write_text("""<html><title>hostile</title><body>
    <a onclick="var kept = []; while (1) kept.push(new Array(1e6).join('x'))">heap</a>
    <a onclick="while (1) {}">loop</a>
    <a onclick="function f() { return f() + 1 } f()">recursion</a>
    <a onclick="while (1) location.href = '/again.html'">navigation loop</a>
    <a onclick="location.href = '/after-hostile.html'">fine</a></body></html>""")
    (site / "after-hostile.html").write_text("<html><title>after</title><body>ok</body></html>")
    return load_world(str(root))


@pytest.mark.slow
def test_hostile_pages_lose_nothing_and_hang_nothing(tmp_path: Path) -> None:
    world = faults_world(tmp_path)
    lab, ports = start_lab(world)
    db_path = tmp_path / "census.db"
    run_id = census_from_world(db_path, world, ["faults.com.kp"])
    try:
        result = crawl_run(str(db_path), run_id, str(tmp_path), ["127.0.0.0/8"], {**FAST, **ports})
    finally:
        lab.stop()
    assert result.finish_reason == "finished"
    pages = dict(rows(db_path, "SELECT url, http_status FROM pages"))
    assert pages["http://faults.com.kp/"] == 200
    # hostile scripts (heap bomb, endless loop, deep recursion, a navigation loop): the page
    # keeps its row and the crawl goes on to where its one sane handler leads
    assert pages["http://faults.com.kp/hostile.html"] == 200
    assert pages["http://faults.com.kp/after-hostile.html"] == 200
    assert pages["http://faults.com.kp/_fault/malformed"] == 200
    # the gzip bomb and the 50 MB page are cut at DOWNLOAD_MAXSIZE, not stored
    assert "http://faults.com.kp/_fault/gzip-bomb" not in pages
    assert "http://faults.com.kp/_fault/big" not in pages
    assert not [u for u in pages if "10.0.0.1" in u]
    (text,) = rows(
        db_path, "SELECT text FROM pages WHERE url = 'http://faults.com.kp/_fault/wrong-charset'"
    )[0]
    assert "조선" in text  # declared EUC-KR, really UTF-8: decoded right, not mojibake
    # the two pages that once raised out of extract(): each keeps its row, text and links
    kept = rows(db_path, "SELECT p.url, p.title, p.extract_error, l.to_url FROM pages p "
                "JOIN links l ON l.page_id = p.id WHERE p.url LIKE '%bad-base' "
                "OR p.url LIKE '%control-chars' ORDER BY p.url")
    assert kept == [
        ("http://faults.com.kp/_fault/bad-base", "bad base", None,
         "http://faults.com.kp/_fault/ok-after-base"),
        ("http://faults.com.kp/_fault/control-chars", "control chars", None,
         "http://faults.com.kp/_fault/ok-after-controls"),
    ]


@pytest.mark.slow
def test_census_crawl_reruns_the_stage_of_an_existing_run(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from crawler.cli import cli

    world = load_world("kp")
    lab, ports = start_lab(world)
    db_path = tmp_path / "census.db"
    run_id = census_from_world(db_path, world, ["rodong.rep.kp", "vok.rep.kp"])
    try:
        result = CliRunner().invoke(cli, [
            "crawl", "--db", str(db_path), "--run", str(run_id), "--out", str(tmp_path),
            "--allow-net", "127.0.0.0/8", "--http-port", str(ports["http_port"]),
            "--https-port", str(ports["https_port"]), "--delay", "0", "--max-pages", "3",
        ])
    finally:
        lab.stop()
    assert result.exit_code == 0, result.output
    assert f"run {run_id} of .kp: complete" in result.output
    assert rows(db_path, "SELECT domain, alive FROM sites ORDER BY domain") == [
        ("rodong.rep.kp", 1), ("vok.rep.kp", 1)
    ]
    assert 2 <= rows(db_path, "SELECT count(*) FROM pages")[0][0] <= 6
    (options,) = rows(db_path, "SELECT options FROM runs WHERE id = ?", run_id)[0]
    assert '"max_pages": 3' in options  # the run records how its crawl was made
