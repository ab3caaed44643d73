"""The section reader: is a section page news (dated headlines, reports) or reference?"""

from pathlib import Path

import pytest

from crawler.classify.model import Prediction, SiteDoc
from crawler.classify.sections import readings, verdict

CORPUS = Path(__file__).parents[2] / "crawler/data/corpus"


def read_as(label: str, p: float) -> Prediction:
    rest = {"news_media": 0.0, "culture_arts": 0.0, "business_trade": 0.0, "portal": 0.0}
    probs = {**rest, label: p}
    others = [k for k in probs if k != label]
    for k in others:
        probs[k] = (1 - p) / len(others)
    if label == "news_media":
        probs["culture_arts"] += 0.05
        probs["portal"] -= 0.05
    return Prediction(probs, probs)


def test_a_section_that_is_not_news_like_counts_as_its_best_other_purpose_when_asked() -> None:
    """A country's traditions page read as news 0.8 by the purpose model, but P(news) 0.3 by
    the kind reader: with news_kind 0.5 it counts as culture; with news_kind 0 (shipped: the
    kind is measured, not used) it stays news."""
    sections = [SiteDoc(domain="x.se", url=f"http://x.se/{p}") for p in ("a", "b", "c")]
    found = readings(sections, [read_as("news_media", 0.8), read_as("news_media", 0.8),
                                read_as("business_trade", 0.9)], kinds=[0.3, 0.9, 0.2])
    assert found[0]["alt"] == "culture_arts" and found[0]["news_kind"] == 0.3
    off = verdict(found, {"news_kind": 0.0, "min_purposes": 3, "max_share": 0.34,
                          "min_confidence": 0.0, "portal_share": 1.01})
    on = verdict(found, {"news_kind": 0.5, "min_purposes": 3, "max_share": 0.34,
                         "min_confidence": 0.0, "portal_share": 1.01})
    assert not off.portal and "news_media 2" in off.why
    assert on.portal and "culture_arts 1" in on.why and "news_media 1" in on.why


@pytest.mark.slow
def test_the_kind_reader_keeps_its_measured_figures() -> None:
    """Grouped CV on corpus/section_kinds.jsonl (README), and on the sites it never saw:
    sweden.se's society, traditions and companies pages (which the purpose model reads as
    news) are less news-like than any real news site's sections on average."""
    from crawler.classify.evaluate import site_record_doc
    from crawler.classify.kinds import cross_validate_kinds, kind_model
    from crawler.classify.model import embed, read_corpus
    from crawler.classify.sections import reading_view

    cv = cross_validate_kinds()
    right = sum(t == (p >= 0.5) for t, p in zip(cv.truth, cv.p_news, strict=True))
    assert right / len(cv.truth) >= 0.92, cv.format()
    mean = {}
    for record in read_corpus(CORPUS / "sites.jsonl"):
        views = [reading_view(s) for s in site_record_doc(record).sections]
        p = kind_model().p_news(embed(views))
        mean[record["domain"]] = (record["label"], sum(p) / len(p))
    news = [m for label, m in mean.values() if label == "news_media"]
    assert mean["sweden.se"][1] < 0.5 < min(news), mean
