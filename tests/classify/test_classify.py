"""The purpose classifier as a researcher uses it: a census run in, labelled rows out."""

from __future__ import annotations

import json
import os
import random
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from crawler.classify import (
    SiteDoc,
    UnknownLabel,
    classify_docs,
    classify_run,
    classify_site,
    evaluate,
    remove_label,
    set_label,
)
from crawler.classify.cues import lexicon, taxonomy
from crawler.classify.model import read_corpus
from crawler.cli import cli
from crawler.db import open_census, start_run

SITES = {
    "kcna.kp": ("조선중앙통신",
                "평양발 조선중앙통신. 통신사 기자들이 최신소식을 보도하였다.", "news_media"),
    "mfa.gov.kp": ("Ministry of Foreign Affairs", "Statements of the minister, embassies abroad "
                   "and consular affairs.", "government"),
    "airkoryo.com.kp": ("高丽航空", "航班时刻表、机票预订和行李规定。", "travel_tourism"),
    "star.edu.kp": ("Университет", "Факультеты, приём абитуриентов, научные исследования.",
                    "education_research"),
}


def census(tmp_path: Path, sites: dict[str, tuple[str, str, str]] = SITES):
    """A fresh census with one run whose sites each have one page."""
    db = open_census(tmp_path / "census.db")
    run_id = start_run(db, "kp", {})
    add_run_rows(db, run_id, sites)
    return db, run_id


def add_run_rows(db, run_id: int, sites: dict[str, tuple[str, str, str]]) -> None:
    for domain, (title, text, _) in sites.items():
        db["domains"].upsert({"name": domain, "suffix": domain.split(".", 1)[1],
                              "first_seen_run": run_id, "last_seen_run": run_id}, pk="name")
        db["sites"].insert({"run_id": run_id, "domain": domain, "url": f"http://{domain}/",
                            "http_status": 200 if text else None, "alive": int(bool(text)),
                            "title": title or None, "pages": int(bool(text))})
        if text:
            db["pages"].insert({"run_id": run_id, "domain": domain, "url": f"http://{domain}/",
                                "http_status": 200, "title": title, "text": text})
    db.conn.commit()


def rows(db, run_id: int) -> dict[str, dict]:
    return {r["domain"]: r for r in db["classifications"].rows_where("run_id = ?", [run_id])}


def test_classify_run_writes_one_row_per_site_with_evidence(tmp_path):
    db, run_id = census(tmp_path)
    classify_run(db, run_id)
    got = rows(db, run_id)
    assert {d: r["label"] for d, r in got.items()} == {d: s[2] for d, s in SITES.items()}
    kcna = got["kcna.kp"]
    assert kcna["source"] == "model" and 0.5 < kcna["confidence"] <= 1
    evidence = json.loads(kcna["evidence"])
    assert {"term": "조선중앙통신", "where": "title"} in [
        {"term": t["term"], "where": t["where"]} for t in evidence["terms"]]
    assert evidence["model"]["label"] == "news_media"
    assert json.loads(got["mfa.gov.kp"]["evidence"])["suffix"] == "gov.kp"


def test_a_revisit_is_read_from_the_page_it_revisits(tmp_path):
    db, _ = census(tmp_path)
    second = start_run(db, "kp", {})
    first_page = next(db["pages"].rows_where("domain = ?", ["kcna.kp"]))
    db["sites"].insert({"run_id": second, "domain": "kcna.kp", "alive": 1, "pages": 1})
    db["pages"].insert({"run_id": second, "domain": "kcna.kp", "url": "http://kcna.kp/",
                        "http_status": 200, "text": None, "revisit_of": first_page["id"]})
    db.conn.commit()
    classify_run(db, second)
    assert rows(db, second)["kcna.kp"]["label"] == "news_media"


def test_rerun_replaces_the_runs_rows(tmp_path):
    db, run_id = census(tmp_path)
    classify_run(db, run_id)
    classify_run(db, run_id)
    assert db["classifications"].count == len(SITES)


def test_dead_and_empty_sites_get_unknown_or_a_guess_that_says_so(tmp_path):
    db, run_id = census(tmp_path, {"nta.gov.kp": ("", "", ""), "blank.kp": ("", "", "")})
    classify_run(db, run_id)
    got = rows(db, run_id)
    guess = json.loads(got["nta.gov.kp"]["evidence"])
    assert got["nta.gov.kp"]["label"] == "government"
    assert got["nta.gov.kp"]["confidence"] <= 0.3
    assert guess["note"].startswith("guess from name and suffix only")
    assert got["blank.kp"]["label"] == "unknown"


@pytest.mark.parametrize("text", [
    "Karibu kwenye tovuti yetu. Habari za leo kutoka mji mkuu na mikoa yote ya nchi. " * 3,
    "",
    bytes(random.Random(7).randrange(256) for _ in range(3000)).decode("latin-1"),
    bytes(random.Random(8).randrange(256) for _ in range(3000)).decode("utf-8", "replace"),
    "\x00\x01\x02" * 100,
])
def test_odd_content_gets_a_sensible_label_and_no_exception(text):
    result = classify_site(SiteDoc(domain="odd.kp", title="", text=text))
    assert result.label == "unknown" or (result.guess and result.confidence <= 0.3)
    assert "note" in result.evidence


# Pages in languages our lexicons do not cover, with none of their cue words: the content
# model must still give them a purpose.
NO_LEXICON = [
    ("handball-bund.de", "Die offizielle Startseite des Deutschen Handballbundes",
     "Nationalmannschaft, Bundesliga, Spielplan, Ergebnisse und Tabellen der Saison.", "sports"),
    ("tourismus.at", "Der offizielle Reiseführer für Österreich",
     "Urlaub in den Alpen: Ausflugsziele, Unterkünfte, Wanderwege und Skigebiete.",
     "travel_tourism"),
    ("moe.gov.sa", "وزارة التعليم", "الموقع الرسمي لوزارة التعليم في المملكة العربية السعودية. "
     "الخدمات الإلكترونية للطلاب والمعلمين واللوائح والأنظمة.", "government"),
    ("snu.ac.kr", "서울대학교", "학부 입학 안내, 대학원 과정, 연구소와 캠퍼스 생활.",
     "education_research"),
    ("mfa.go.th", "กระทรวงการต่างประเทศ", "กระทรวงการต่างประเทศ ประกาศข่าวสารล่าสุดเกี่ยวกับ"
     "การเดินทางของประชาชน", "government"),
]


@pytest.mark.parametrize("domain,title,text,label", NO_LEXICON)
def test_a_page_without_lexicon_cues_gets_a_content_label(domain, title, text, label):
    doc = SiteDoc(domain=domain, title=title, text=text, anchors=["News", "Presse", "Infos"])
    result = classify_site(doc)
    assert result.label == label, result.evidence
    assert result.evidence["decided_by"] in ("model", "cues", "json-ld")


def test_a_korean_page_is_a_language_the_classifier_knows():
    """Issue 13: a Korean government page amid English menu words was "a language the
    classifier does not know"; its script says it is Korean, which the encoder reads."""
    for doc in (SiteDoc(domain="ma.gov.kp", title="해사감독국",
                        text="HOME LOGIN SITEMAP ENGLISH 해사감독국 선박등록 항만안전"),
                SiteDoc(domain="ma.gov.kp", title="해사감독국")):
        result = classify_site(doc)
        assert "does not know" not in result.evidence.get("note", "")
        # a title alone may say too little to be sure, but the model has read it
        assert "government" in (result.label, result.evidence["runner_up"]["label"])
        assert result.evidence["decided_by"] != "name"
    swahili = classify_site(SiteDoc(domain="habari.kp", text="Karibu kwenye tovuti yetu. "
                                    "Habari za leo kutoka mji mkuu na mikoa yote ya nchi. " * 3))
    assert swahili.evidence["note"].endswith("a language the classifier does not know (sw)")


def test_a_menu_word_does_not_decide():
    doc = SiteDoc(domain="austria.info", title="Der offizielle Reiseführer für Österreich",
                  description="Urlaub in Österreich: Städte, Berge, Seen und Kultur.",
                  anchors=["News", "Presse", "Infos", "Newsletter", "Kontakt"] * 3)
    assert classify_site(doc).label == "travel_tourism"


@pytest.mark.xfail(strict=True, reason="issue 11 open: one page of topic sections reads as news "
                   "(news_media 0.62). Trained on 24 real national portals the model gets it "
                   "right, but then reads the lab's Voice of Korea and real state-run news sites "
                   "as portals, so those portals are evaluation only (README, 'National "
                   "portals')")
def test_a_national_portal_is_a_portal():
    """Naenara-like, as one page: news, tourism, politics and trade sections under one roof."""
    doc = SiteDoc(
        domain="naenara.com.kp", title="Naenara - DPR Korea",
        description="Naenara, the national portal of the DPRK",
        headings=["Politics", "Economy", "Tourism", "Foreign Trade", "Culture", "News",
                  "Music", "Publications"],
        text="Welcome to Naenara. Politics: the Workers' Party and the state. News of the day. "
             "Tourism: travel to Pyongyang and Mt Kumgang. Foreign trade: companies and "
             "export goods. Korean cuisine, music, films and books.")
    result = classify_site(doc)
    assert result.label == "portal", result.evidence


def test_the_site_declares_its_own_type():
    doc = SiteDoc(domain="bundestag-fraktion.de", title="Startseite",
                  text="Willkommen auf unserer Seite.", schema_types=["PoliticalParty"])
    result = classify_site(doc)
    assert result.label == "political"
    assert {"term": "PoliticalParty", "where": "json-ld"} in [
        {"term": t["term"], "where": t["where"]} for t in result.evidence["terms"]]


def test_parked_page_is_not_content():
    result = classify_site(SiteDoc(domain="shop.com.kp", title="Welcome to nginx!",
                                   text="If you see this page, the nginx web server works."))
    assert result.guess and "parked" in result.evidence["note"]


def test_human_label_wins_and_survives_a_second_run(tmp_path):
    db, run_id = census(tmp_path)
    classify_run(db, run_id)
    assert set_label(db, "kcna.kp", "political", "party organ, for this study") is True
    assert rows(db, run_id)["kcna.kp"]["source"] == "label"
    second = start_run(db, "kp", {})
    add_run_rows(db, second, SITES)
    classify_run(db, second)
    row = rows(db, second)["kcna.kp"]
    assert (row["label"], row["source"], row["confidence"]) == ("political", "label", 1.0)
    evidence = json.loads(row["evidence"])
    assert evidence["note"] == "party organ, for this study"
    assert evidence["model"]["label"] == "news_media"
    assert remove_label(db, "kcna.kp") is True
    assert rows(db, second)["kcna.kp"]["label"] == "news_media"
    classify_run(db, second)
    assert rows(db, second)["kcna.kp"]["source"] == "model"


def test_set_label_refuses_a_label_outside_the_taxonomy(tmp_path):
    db, _ = census(tmp_path)
    with pytest.raises(UnknownLabel):
        set_label(db, "kcna.kp", "propaganda")


def test_cli_classify_and_label(tmp_path):
    db, _ = census(tmp_path)
    db.close()
    path = str(tmp_path / "census.db")
    runner = CliRunner()
    result = runner.invoke(cli, ["classify", "--db", path])
    assert result.exit_code == 0, result.output
    assert "classified 4 sites" in result.output
    result = runner.invoke(cli, ["label", "kcna.kp", "nonsense", "--db", path])
    assert result.exit_code == 1
    assert "'nonsense' is not a label" in result.output
    assert len(result.output.strip().splitlines()) == 1
    result = runner.invoke(cli, ["label", "new.kp", "sports", "--note", "seen", "--db", path])
    assert result.exit_code == 0
    assert "not in the census yet" in result.output
    result = runner.invoke(cli, ["label", "new.kp", "--remove", "--db", path])
    assert "removed" in result.output
    assert open_census(path)["labels"].count == 0


def test_cli_evaluate_prints_the_figures(tmp_path):
    shipped = Path(__file__).parents[2] / "crawler/data/corpus/eval.jsonl"
    result = CliRunner().invoke(cli, ["classify", "--evaluate", str(shipped)])
    assert result.exit_code == 0, result.output
    assert "macro-F1" in result.output and "confusion" in result.output


def test_the_cross_validation_says_what_each_group_of_sites_got_held_out():
    """A corpus record's ``group`` (national_portal, state_media...) gets its own line: how
    many of the group's sites, held out, got their label, and what the others got."""
    from crawler.classify.evaluate import CrossValidation, Report

    truth = ["portal", "portal", "portal", "news_media", "news_media", "sports"]
    predicted = ["portal", "news_media", "portal", "news_media", "portal", "sports"]
    groups = ["national_portal", "national_portal", "national_portal", "state_media",
              "state_media", ""]
    report = Report("test", ["portal", "news_media", "sports"], truth, predicted,
                    [f"s{i}.kp" for i in range(6)])
    cv = CrossValidation(report, [0.9] * 6, ["en"] * 6, [""] * 6, 2, groups=groups)
    block = cv.format().split("by group (what each group's sites got, held out)\n")[1]
    assert block.splitlines() == ["  national_portal held out: 2 of 3 portal, 1 news_media",
                                  "  state_media held out: 1 of 2 news_media, 1 portal"]
    assert "by group" not in CrossValidation(report, [0.9] * 6, ["en"] * 6, [""] * 6,
                                             2).format()


def test_held_out_evaluation_set():
    """Macro-F1 on the eval set, which shares no domain and no near-copy with training."""
    train, held_out = read_corpus(name="train.jsonl"), read_corpus(name="eval.jsonl")
    assert not {r["domain"] for r in train} & {r["domain"] for r in held_out}

    def grams(r):
        text = r["title"] + r["description"] + r["text"]
        return {text[i:i + 5] for i in range(len(text) - 4)}

    train_grams = [grams(r) for r in train]
    for record in held_out:
        mine = grams(record)
        if mine:
            nearest = max(len(mine & g) / len(mine | g) for g in train_grams)
            assert nearest < 0.5, record["domain"]
    report = evaluate()
    assert report.macro_f1 >= 0.85, report.format()


def test_data_files_agree_with_the_taxonomy():
    labels = set(taxonomy())
    lx = lexicon()
    assert set(lx.languages) >= {"ko", "en", "zh", "ja", "ru", "es", "fr"}
    for table in (lx.words, lx.prefixes, lx.substrings, *lx.phrases.values()):
        for by_label in table.values():
            assert set(by_label) <= labels
    train = read_corpus(name="train.jsonl")
    covered = {(r["label"], r["lang"]) for r in train}
    for label in labels - {"unknown"}:
        for lang in ("ko", "en", "zh", "ja", "ru", "es", "fr"):
            assert (label, lang) in covered


def test_secondary_purpose_of_a_tourism_office_that_is_a_state_body():
    doc = SiteDoc(domain="tourism-admin.gov.kp", title="National Tourism Administration",
                  text="The administration is a state authority under the cabinet. It issues "
                       "regulations and visas for tourists, licenses travel agencies and hotels, "
                       "and promotes tours and sightseeing.")
    result = classify_site(doc)
    assert {result.label, *result.secondary} >= {"travel_tourism", "government"}


WORLD = Path(__file__).parents[2] / "crawler/data/worlds/kp/sites"


def lab_sites():
    if not WORLD.is_dir():
        return []
    return sorted(p for p in WORLD.iterdir() if (p / "site.toml").exists())


def lab_doc(site: Path) -> SiteDoc:
    """What the crawl would store of a lab site, read from its files."""
    from crawler.crawl.extract import extract

    doc, texts = SiteDoc(domain=site.name), []
    for page in sorted(site.rglob("*")):
        if page.is_file() and page.suffix in (".html", ".htm", ".kcmsf"):
            got = extract(page.read_bytes(), f"http://{site.name}/{page.relative_to(site)}")
            if got.title and not doc.title:
                doc.title = got.title
            elif got.title:
                doc.headings.append(got.title)
            doc.description = doc.description or got.description or ""
            doc.headings += got.headings[:20]
            doc.anchors += got.anchors[:50]
            texts.append((got.text or "")[:3000])
    doc.text = "\n".join(texts)
    return doc


@pytest.mark.skipif(not lab_sites(), reason="the lab world has no sites")
def test_every_lab_site_gets_its_purpose():
    sites = lab_sites()
    configs = [tomllib.loads((s / "site.toml").read_text(encoding="utf-8")) for s in sites]
    docs = [lab_doc(s) for s in sites]
    for config, doc in zip(configs, docs, strict=True):
        # what the crawl sees of a site that never answers or fails is nothing at all
        if config.get("hang") or config.get("status", 200) >= 500:
            doc.title, doc.text, doc.headings, doc.anchors, doc.alive = "", "", [], [], False
    for config, doc, result in zip(configs, docs, classify_docs(docs), strict=True):
        if not doc.alive:
            assert result.guess or result.label == "unknown", doc.domain
            continue
        assert result.label == config["purpose"], (doc.domain, result.evidence)
        if not result.guess:
            assert result.evidence["terms"], doc.domain


@pytest.mark.skipif(not os.environ.get("CENSUS_BENCH"), reason="set CENSUS_BENCH=1")
def test_benchmark_runs():
    from bench.bench_classify import main

    assert main(["--pages", "500"]) == 0


def test_every_real_document_says_where_it_comes_from_and_why():
    from crawler.classify.model import real_corpus, site_group

    real = real_corpus()
    assert len(real) >= 250
    for record in real:
        assert record["label"] in taxonomy(), record["domain"]
        assert record["source"].startswith(("github:", "web page http")), record["domain"]
        assert record["reason"] and record["licence"] and record["text"], record["domain"]
    # nothing from the reserved test pages of web-extraction libraries
    reserved = ("trafilatura", "htmldate", "readability", "newspaper", "goose", "postlight",
                "mercury-parser")
    assert not [r for r in real if any(name in r["source"].lower() for name in reserved)]
    groups = {site_group(r["domain"]) for r in real}
    assert len(groups) >= 0.95 * len(real)


@pytest.mark.slow
def test_cli_evaluate_alone_cross_validates_the_real_corpus():
    """The shipped model, trained on real sites only, meets issue 11's targets."""
    from crawler.classify import model

    assert not [r for r in model.training_corpus() if not model.is_real(r)]
    result = CliRunner().invoke(cli, ["classify", "--evaluate"])
    assert result.exit_code == 0, result.output
    assert "grouped 5-fold cross-validation on the real corpus" in result.output
    assert "bootstrap interval" in result.output and "calibration" in result.output
    macro = float(result.output.split("macro-F1: ")[1].split()[0])
    assert macro >= 0.85, result.output  # issue 11's targets
    table = result.output.split("f1    n\n")[1].split("\n\n")[0]
    per_label = {line.split()[0]: float(line.split()[3]) for line in table.splitlines()}
    assert {label: f1 for label, f1 in per_label.items()
            if label != "unknown" and f1 < 0.7} == {}, result.output


def test_the_crawls_self_description_reaches_the_classifier(tmp_path):
    db, run_id = census(tmp_path, {"handball.de": ("Startseite", "Willkommen auf unserer Seite.",
                                                   "sports")})
    db["pages"].update(1, {"site_name": "Deutscher Handballbund",
                           "schema_types": '["WebSite", "SportsOrganization"]'})
    db.conn.commit()
    classify_run(db, run_id)
    row = rows(db, run_id)["handball.de"]
    assert row["label"] == "sports"
    assert {"term": "SportsOrganization", "where": "json-ld"} in [
        {"term": t["term"], "where": t["where"]} for t in json.loads(row["evidence"])["terms"]]


def test_training_embeddings_are_cached_under_a_digest_of_the_corpus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crawler.classify import model

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    docs = [model.SiteDoc(domain="kcna.kp", title="Korean Central News Agency")]
    first = model.training_vectors(docs)
    assert len(list((tmp_path / "cctld-census").glob("purpose-training-*.npy"))) == 1

    def no_encoder() -> None:
        raise AssertionError("the cached embeddings were not used")

    monkeypatch.setattr(model, "encoder", no_encoder)
    assert (model.training_vectors(docs) == first).all()
    with pytest.raises(AssertionError, match="not used"):
        model.training_vectors([model.SiteDoc(domain="rodong.rep.kp", title="Rodong Sinmun")])
