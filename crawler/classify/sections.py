"""A portal is a site, not a page: its top-level sections decide.

A national portal such as naenara.com.kp puts sections of different purposes under one roof
(politics, tourism, foreign trade, music, news), and its home page alone reads like a news
site's home page.  The crawl keeps several pages of a site; the pages one step from the home
page that its menu links to are its sections.  Each is read on its own by the content model,
and the site is a ``portal`` when their readings spread over several purposes with none
dominating.  A news site's politics, sport and business sections are lists of dated articles
that the model mostly reads as news, so it stays ``news_media``.  The thresholds are data
(``crawler/data/sections.toml``); how well this separates real portals from real news sites
is measured on ``corpus/sites.jsonl`` (README).
"""

from __future__ import annotations

import json
import re
import tomllib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import sqlite_utils

from .model import Prediction, SiteDoc

PORTAL = "portal"
NEWS_MEDIA = "news_media"
UNKNOWN = "unknown"
PAGE_TEXT_LIMIT = 3000
"""Characters of one page the classifier reads (a site's pages together, or one section)."""
_LANGUAGE_PATH = re.compile(r"^[a-z]{2}([-_][a-z]{2})?$", re.IGNORECASE)
_INDEX = re.compile(r"^(index|default|main|home)(\.\w+)?$", re.IGNORECASE)


@cache
def rule() -> dict[str, Any]:
    """The thresholds (``crawler/data/sections.toml``)."""
    path = resources.files("crawler") / "data" / "sections.toml"
    return tomllib.loads(path.read_text(encoding="utf-8"))


def is_section(url: str, anchor: str, home_urls: Sequence[str] = ()) -> bool:
    """A menu link of the home page to a top-level section: a short anchor, and a shallow
    path (/tourism, /en/trade) or a subdomain of the site (weather.example.ru), that is
    neither the home page again nor only a language version of it (/en/, en.example.com)."""
    words = anchor.split()
    if not words or len(words) > rule()["max_anchor_words"] or (
            len(anchor) > rule()["max_anchor_chars"]):
        return False
    parts = urlsplit(url)
    if url.split("#")[0] in home_urls:
        return False
    segments = [s for s in parts.path.split("/") if s]
    if segments and _INDEX.match(segments[-1]):
        segments = segments[:-1]
    if len(segments) > rule()["max_path_segments"]:
        return False
    host = (parts.hostname or "").removeprefix("www.")
    homes = {(urlsplit(h).hostname or "").removeprefix("www.") for h in home_urls}
    if homes and host not in homes:  # a subdomain: its root is a section too
        return not _LANGUAGE_PATH.match(host.split(".")[0]) and not (
            len(segments) == 1 and _LANGUAGE_PATH.match(segments[0]))
    if not segments:
        return False
    return not (len(segments) == 1 and _LANGUAGE_PATH.match(segments[0]))


def is_language_home(url: str) -> bool:
    """A language version of the home page: /en/, /ko/index.html, en.example.com/."""
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    if segments and _INDEX.match(segments[-1]):
        segments = segments[:-1]
    if not segments:
        return bool(_LANGUAGE_PATH.match((parts.hostname or "").split(".")[0]))
    return len(segments) == 1 and bool(_LANGUAGE_PATH.match(segments[0]))


def section_pages(db: sqlite_utils.Database, run_id: int) -> dict[str, list[SiteDoc]]:
    """Each site's section pages as documents of their own, in the home pages' link order.
    A multilingual site's language home pages (/en/, /ko/) count as home pages too: their
    menus lead to its sections."""
    sections: dict[str, list[SiteDoc]] = {}
    seen: dict[str, set[str]] = {}
    rows = db.execute_returning_dicts(
        "SELECT h.domain, h.url AS home_url, h.depth AS home_depth, l.anchor, p.url, p.title, "
        "p.lang, COALESCE(p.text, r.text) AS text, p.description, p.headings, "
        "COALESCE(p.site_name, r.site_name) AS site_name "
        "FROM pages h JOIN links l ON l.page_id = h.id "
        "JOIN pages p ON p.run_id = h.run_id AND p.domain = h.domain AND p.depth = h.depth + 1 "
        "AND (p.url = l.to_url OR p.request_url = l.to_url) "
        "LEFT JOIN pages r ON r.id = p.revisit_of "
        "WHERE h.run_id = ? AND h.depth <= 1 AND l.anchor IS NOT NULL "
        "AND NOT COALESCE(p.http_status >= 400, 0) "
        "ORDER BY h.domain, h.depth, h.id, l.id", [run_id])
    for row in rows:
        domain = row["domain"]
        if row["home_depth"] and not is_language_home(row["home_url"]):
            continue
        done = seen.setdefault(domain, set())
        found = sections.setdefault(domain, [])
        if row["url"] in done or len(found) >= rule()["max_sections"] or not row["text"]:
            continue
        if not is_section(row["url"], row["anchor"].strip(), [row["home_url"]]):
            continue
        done.add(row["url"])
        found.append(section_doc(domain, row))
    return {domain: docs for domain, docs in sections.items() if docs}


def section_doc(domain: str, page: dict[str, Any]) -> SiteDoc:
    """One section page as the model reads it."""
    return SiteDoc(domain=domain, url=page.get("url") or "", title=page.get("title") or "",
                   description=page.get("description") or "",
                   headings=as_list(page["headings"])[:20] if page.get("headings") else [],
                   text=(page.get("text") or "")[:PAGE_TEXT_LIMIT], lang=page.get("lang"),
                   site_name=page.get("site_name") or "")


def as_list(value: str) -> list[str]:
    """A JSON list column (headings, schema types) as strings; a bare string is one item."""
    try:
        parsed = json.loads(value)
    except ValueError:
        return [value]
    return [str(v) for v in parsed] if isinstance(parsed, list) else [str(parsed)]


def reading_view(section: SiteDoc, chars: int | None = None) -> SiteDoc:
    """What of a section the model reads: its title (with the site's name) and the start of
    its text (``text_chars``, or ``chars``).  A section's menu title and first lines say what
    it is about, and reading a short view keeps a site with many sections cheap (the
    encoder's time grows with text)."""
    chars = rule()["text_chars"] if chars is None else chars
    return SiteDoc(domain=section.domain, url=section.url, title=section.title,
                   text=section.text[:chars], lang=section.lang,
                   site_name=section.site_name)


@dataclass
class Verdict:
    """What a site's sections say: each one's reading, and whether they make it a portal."""

    readings: list[dict[str, Any]]
    portal: bool
    why: str

    def evidence(self) -> dict[str, Any]:
        return {"portal": self.portal, "why": self.why, "read": self.readings}


def readings(sections: Sequence[SiteDoc], predictions: Sequence[Prediction],
             kinds: Sequence[float] | None = None) -> list[dict[str, Any]]:
    """Each section's reading: its url, the label the model gives it and how surely; with
    ``kinds`` (each section's P(news) from the kind reader, ``kinds.py``) also that, and the
    best label other than news with its share of the rest (``alt``, ``alt_p``), which the
    verdict uses when the page is not news-like (``news_kind``)."""
    found = []
    for i, (doc, pred) in enumerate(zip(sections, predictions, strict=True)):
        probs = {k: v for k, v in pred.probabilities.items() if k != UNKNOWN}
        label = max(probs, key=probs.__getitem__)
        reading = {"url": doc.url, "label": label, "p": round(probs[label], 3)}
        if kinds is not None:
            reading["news_kind"] = round(kinds[i], 3)
            if label == NEWS_MEDIA:
                rest = {k: v for k, v in probs.items() if k != NEWS_MEDIA}
                alt = max(rest, key=rest.__getitem__)
                reading.update(alt=alt, alt_p=round(rest[alt] / max(sum(rest.values()), 1e-9),
                                                    3))
        found.append(reading)
    return found


def as_read(reading: dict[str, Any], news_kind: float) -> tuple[str, float]:
    """A section's label and probability as the verdict counts it: a page the kind reader
    does not find news-like (P(news) below ``news_kind``) does not count as news; it counts
    as the best other purpose the model sees in it."""
    if reading["label"] == NEWS_MEDIA and "alt" in reading and (
            reading["news_kind"] < news_kind):
        return reading["alt"], reading["alt_p"]
    return reading["label"], reading["p"]


def judge(sections: Sequence[SiteDoc], predictions: Sequence[Prediction],
          thresholds: dict[str, Any] | None = None,
          kinds: Sequence[float] | None = None) -> Verdict:
    """Portal when the sections' readings spread over ``min_purposes`` labels or more and the
    commonest holds at most ``max_share`` of them, or when ``portal_share`` of them read as a
    portal's own pages (dictionary, mail help, questions and answers); only sections read at
    least ``min_confidence`` surely count, and a section that is not news-like (``kinds``,
    below ``news_kind``) does not count as news.  ``thresholds`` overrides the shipped ones."""
    return verdict(readings(sections, predictions, kinds), thresholds)


def verdict(found: list[dict[str, Any]], thresholds: dict[str, Any] | None = None
            ) -> Verdict:
    """The verdict on readings already made (see ``judge``)."""
    r = {**rule(), **(thresholds or {})}
    read = [as_read(x, r["news_kind"]) for x in found]
    counted = [label for label, p in read if p >= r["min_confidence"]]
    if len(counted) < r["min_sections"]:
        return Verdict(found, False, f"{len(counted)} sections read, fewer than "
                                        f"{r['min_sections']}")
    spread = Counter(counted)
    top, most = spread.most_common(1)[0]
    share = most / len(counted)
    summary = ", ".join(f"{label} {n}" for label, n in spread.most_common())
    if len(spread) >= r["min_purposes"] and share <= r["max_share"]:
        return Verdict(found, True, f"sections of {len(spread)} purposes ({summary})")
    if spread[PORTAL] >= r["portal_share"] * len(counted):
        return Verdict(found, True, f"most sections read as a portal's own pages ({summary})")
    return Verdict(found, False, f"{top} holds {most} of {len(counted)} sections "
                                    f"({summary})")
