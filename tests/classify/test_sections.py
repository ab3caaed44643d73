"""A portal is decided from the site: its top-level sections, each read on its own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crawler.classify import classify_run
from crawler.classify.sections import is_section, section_pages
from crawler.db import open_census, start_run


def crawled_site(db, run_id: int, domain: str, home: tuple[str, str],
                 sections: dict[str, tuple[str, str, str]]) -> None:
    """What the crawl stores of a site: its home page (depth 0), the pages its menu links
    to (depth 1) and the links with their anchors."""
    db["domains"].upsert({"name": domain, "suffix": domain.split(".", 1)[1],
                          "first_seen_run": run_id, "last_seen_run": run_id}, pk="name")
    db["sites"].insert({"run_id": run_id, "domain": domain, "url": f"http://{domain}/",
                        "http_status": 200, "alive": 1, "title": home[0],
                        "pages": 1 + len(sections)})
    home_id = db["pages"].insert({"run_id": run_id, "domain": domain, "url": f"http://{domain}/",
                                  "http_status": 200, "depth": 0, "title": home[0],
                                  "text": home[1]}).last_pk
    for path, (anchor, title, text) in sections.items():
        url = f"http://{domain}/{path}"
        db["pages"].insert({"run_id": run_id, "domain": domain, "url": url, "http_status": 200,
                            "depth": 1, "title": title, "text": text})
        db["links"].insert({"run_id": run_id, "page_id": home_id, "to_url": url,
                            "to_host": domain, "internal": 1, "how": "href", "anchor": anchor,
                            "followed": 1})
    db.conn.commit()


NAENARA_HOME = ("Naenara - DPR Korea",
                "Welcome to Naenara. Kim Jong Un inspects a new factory. Supreme People's "
                "Assembly session held. Delegation leaves for Moscow. Aphorisms and anecdotes.")
NAENARA = {
    "en/news": ("News", "News",
                "2024-05-12 Supreme People's Assembly session held. 2024-05-11 New hydropower "
                "station completed. 2024-05-10 Delegation leaves for Moscow."),
    "en/tourism": ("Tourism", "Tourism",
                   "Visit Korea: Mt Paektu, Mt Kumgang and Mt Myohyang, the historic city of "
                   "Kaesong, hotels in Pyongyang, tour packages and visas for foreign tourists, "
                   "travel agencies and flights with Air Koryo."),
    "en/politics": ("Politics", "Politics",
                    "The Workers' Party of Korea. The Socialist Constitution of the DPRK. The "
                    "Supreme People's Assembly. The Party's policies and the line of "
                    "self-reliance, the cause of national reunification."),
    "en/trade": ("Foreign Trade", "Foreign Trade",
                 "Export goods and trading companies of the DPRK: machinery, textiles, minerals "
                 "and medicines. Company directory, product catalogue, trade fairs in "
                 "Pyongyang, how to contact a trading corporation."),
}


def test_a_national_portal_crawled_as_several_pages_is_a_portal(tmp_path: Path) -> None:
    """Naenara-like: news, tourism, politics and trade sections under one roof.  Its home page
    alone reads as a news site's; its sections, each read on its own, decide."""
    db = open_census(tmp_path / "census.db")
    run_id = start_run(db, "kp", {})
    crawled_site(db, run_id, "naenara.com.kp", NAENARA_HOME, NAENARA)
    (result,) = classify_run(db, run_id)
    assert result.label == "portal", result.evidence
    assert result.evidence["decided_by"] == "sections"
    read = {x["url"].rsplit("/", 1)[1]: x["label"] for x in result.evidence["sections"]["read"]}
    assert read["tourism"] == "travel_tourism" and read["trade"] == "business_trade"
    assert result.evidence["sections"]["portal"] is True
    row = db.execute("SELECT label, evidence FROM classifications").fetchone()
    assert row[0] == "portal" and json.loads(row[1])["decided_by"] == "sections"


def test_a_news_site_with_politics_sport_and_business_sections_stays_news(
        tmp_path: Path) -> None:
    db = open_census(tmp_path / "census.db")
    run_id = start_run(db, "kp", {})
    dated = "Updated {d} May 2024. {h} Read more. Updated {e} May 2024. {i} Read more."
    crawled_site(db, run_id, "pyongyangtimes.com.kp", (
        "The Pyongyang Times", "The Pyongyang Times, weekly newspaper. Latest news, "
        "editorials and reports from our correspondents."), {
        "politics": ("Politics", "Politics | The Pyongyang Times", dated.format(
            d=12, h="Party plenary meeting opens, our correspondent reports.", e=11,
            i="Premier inspects the capital's construction sites.")),
        "sports": ("Sports", "Sports | The Pyongyang Times", dated.format(
            d=12, h="Women's football team wins Asian qualifier, our reporter writes.", e=10,
            i="Table tennis players return from the world championships.")),
        "economy": ("Economy", "Economy | The Pyongyang Times", dated.format(
            d=11, h="Steel output rises, the paper's economic correspondent reports.", e=9,
            i="Farmers finish rice transplanting ahead of schedule.")),
    })
    (result,) = classify_run(db, run_id)
    assert result.label == "news_media", result.evidence
    assert result.evidence["sections"]["portal"] is False


def test_what_counts_as_a_section() -> None:
    home = ["http://naenara.com.kp/"]
    assert is_section("http://naenara.com.kp/politics", "Politics", home)
    assert is_section("http://naenara.com.kp/en/tourism.html", "Tourism", home)
    assert is_section("http://weather.naenara.com.kp/", "Weather", home)
    # the home page again, a language version of it, an article, a headline
    assert not is_section("http://naenara.com.kp/index.html", "Home", home)
    assert not is_section("http://naenara.com.kp/en/", "English", home)
    assert not is_section("http://en.naenara.com.kp/", "English", home)
    assert not is_section("http://naenara.com.kp/2024/05/12/leader-visits-farm", "More", home)
    assert not is_section("http://naenara.com.kp/news", "Leader visits a farm in South "
                          "Hwanghae Province", home)


def test_only_menu_links_of_the_home_page_are_sections(tmp_path: Path) -> None:
    db = open_census(tmp_path / "census.db")
    run_id = start_run(db, "kp", {})
    crawled_site(db, run_id, "naenara.com.kp", NAENARA_HOME, {
        **NAENARA, "en/article/1": ("Kim Jong Un inspects a new fertilizer factory",
                                    "Article", "The leader inspected the factory.")})
    found = section_pages(db, run_id)["naenara.com.kp"]
    assert [d.url.split("/", 3)[3] for d in found] == list(NAENARA)


def test_a_multilingual_sites_sections_are_found_under_its_language_home_pages(
        tmp_path: Path) -> None:
    """naenara.com.kp's home page leads to /en/, /ko/...; their menus lead to the sections."""
    db = open_census(tmp_path / "census.db")
    run_id = start_run(db, "kp", {})
    crawled_site(db, run_id, "naenara.com.kp", NAENARA_HOME, {
        "en/index.html": ("English", "Naenara", NAENARA_HOME[1])})
    (en_id,) = [r["id"] for r in db["pages"].rows_where("url LIKE '%/en/index.html'")]
    for path, (anchor, title, text) in NAENARA.items():
        url = f"http://naenara.com.kp/{path}"
        db["pages"].insert({"run_id": run_id, "domain": "naenara.com.kp", "url": url,
                            "http_status": 200, "depth": 2, "title": title, "text": text})
        db["links"].insert({"run_id": run_id, "page_id": en_id, "to_url": url,
                            "to_host": "naenara.com.kp", "internal": 1, "how": "href",
                            "anchor": anchor, "followed": 1})
    db.conn.commit()
    found = section_pages(db, run_id)["naenara.com.kp"]
    assert [d.url.split("/", 3)[3] for d in found] == list(NAENARA)


# What the section rule makes of corpus/sites.jsonl (README): sites right with the pages read
# together, with the shipped rule and with thresholds chosen leave-one-site-out; the national
# portals found and the other sites called portals with the shipped rule.
ALONE_SHIPPED_HELD = (11, 13, 10)
NATIONAL_FOUND: set[str] = set()
OTHERS_CALLED_PORTAL = ["rp-online.de"]


@pytest.mark.slow
def test_the_section_rule_on_real_multi_page_sites_keeps_its_measured_figures() -> None:
    """corpus/sites.jsonl, read by a model trained without its sites (README figures): the
    shipped rule finds none of the six evaluated national portals, whose sections read as news
    or culture, and calls one news site a portal (rp-online.de).  A model trained on real
    national portals finds five of them but calls state-run news and culture sites portals
    too: those portals are evaluation only (README, "National portals")."""
    from crawler.classify.evaluate import evaluate

    result = evaluate(Path(__file__).parents[2] / "crawler/data/corpus/sites.jsonl")
    truth = [r["label"] for r in result.records]
    right = sum(t == p for t, p in zip(truth, result.shipped, strict=True))
    alone = sum(t == p for t, p in zip(truth, result.alone, strict=True))
    held = sum(t == p for t, p in zip(truth, result.held_out, strict=True))
    assert (alone, right, held) == ALONE_SHIPPED_HELD, result.format()
    national = {"korea.net", "sweden.se", "finland.fi", "latvia.eu",
                "tatsachen-ueber-deutschland.de", "marcachile.cl"}
    assert national <= {r["domain"] for r in result.records}
    assert {r["domain"] for r, p in zip(result.records, result.shipped, strict=True)
            if r["domain"] in national and p == "portal"} == NATIONAL_FOUND, result.format()
    assert [r["domain"] for r, p in zip(result.records, result.shipped, strict=True)
            if r["label"] != "portal" and p == "portal"] == OTHERS_CALLED_PORTAL
    assert "thresholds chosen leave-one-site-out" in result.format()
