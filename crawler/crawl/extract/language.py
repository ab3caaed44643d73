"""The language of a page: its declaration, the script of its text, then a statistical
detector (py3langid) loaded once per process."""

from __future__ import annotations

import functools
import itertools
import re
import threading

import lxml.html

from .decode import header

_SCRIPT_LANG = {"hangul": "ko", "kana": "ja", "han": "zh", "cyrillic": "ru"}


# Runs of one script, counted in C: a Python loop over every character cost a third of the
# crawl stage's CPU (bench/bench_crawl.py); matching runs, not characters, keeps lists short.
_SCRIPTS = {
    "hangul": re.compile("[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]+"),
    "kana": re.compile("[\u3040-\u30ff\u31f0-\u31ff]+"),
    "han": re.compile("[\u4e00-\u9fff\u3400-\u4dbf\uf900-\ufaff]+"),
    "cyrillic": re.compile("[\u0400-\u04ff]+"),
    # str.isalpha() below U+0250: ASCII letters, ª µ º, Latin-1 letters, Latin Extended-A/B
    "latin": re.compile("[A-Za-z\u00aa\u00b5\u00ba\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f]+"),
}
_LETTER = re.compile(r"[^\W\d_]")


def _script_counts(text: str) -> tuple[dict[str, int], int]:
    sample = text[:20_000]
    ascii_only = sample.isascii()  # the usual Latin page: only one regex to run
    counts = {
        name: 0 if ascii_only and name != "latin" else sum(map(len, regex.findall(sample)))
        for name, regex in _SCRIPTS.items()
    }
    return counts, sum(counts.values())


def language_by_script(text: str) -> tuple[str | None, float]:
    """Language from writing system ratios; Latin script says nothing (returns None).

    Kana anywhere makes Japanese (Japanese mixes kana and kanji; Chinese has no kana);
    Hangul with some Han is still Korean (hanja in older North Korean texts).
    """
    if text[:20_000].isascii():  # no script but Latin: counting its letters says nothing
        return None, 0.0
    counts, letters = _script_counts(text)
    if letters < 4:
        return None, 0.0
    if counts["kana"] and counts["kana"] + counts["han"] >= letters * 0.5 \
            and counts["kana"] >= counts["hangul"]:
        return "ja", min(1.0, (counts["kana"] + counts["han"]) / letters)
    best = max(("hangul", "han", "cyrillic"), key=lambda k: counts[k])
    ratio = counts[best] / letters
    if ratio < 0.3:
        return None, 0.0
    return _SCRIPT_LANG[best], round(ratio, 3)


# The detector's cost grows with its input; 2,000 characters tell a language as well as more.
DETECTOR_SAMPLE = 2000


def warm_up() -> None:
    """Load the language model in the background, while a crawl starts, not on its first page."""
    threading.Thread(target=_identifier, name="langid-load", daemon=True).start()


_MODEL_LOCK = threading.Lock()


@functools.cache
def _load_identifier():  # py3langid has no type hints
    from ...langmodel import identifier

    return identifier()


def _identifier():  # py3langid has no type hints
    """The py3langid model, loaded once (0.05 s unpacked, ``langmodel``; 75 MB) and only
    when a page needs it."""
    with _MODEL_LOCK:  # the warm-up thread and the first page must not both load it
        return _load_identifier()


def language_of(text: str | None) -> tuple[str | None, float | None, str | None]:
    """(lang, confidence, source) of a text: 'script' for CJK/Cyrillic, else 'detector'."""
    if not text or not text.strip():
        return None, None, None
    lang, conf = language_by_script(text)
    if lang:
        return lang, conf, "script"
    sample = text[:DETECTOR_SAMPLE]
    if next(itertools.islice(_LETTER.finditer(sample), 11, None), None) is None:
        return None, None, None  # fewer than 12 letters
    lang, conf = _identifier().classify(sample)
    return lang, round(float(conf), 3), "detector"


def declared_lang(root: lxml.html.HtmlElement | None, headers: dict[str, str] | None
                   ) -> str | None:
    value = root.get("lang") or root.get("xml:lang") if root is not None else None
    value = value or header(headers, "content-language")
    if not value:
        return None
    primary = value.split(",")[0].strip().split("-")[0].split("_")[0].lower()
    return primary if re.fullmatch(r"[a-z]{2,3}", primary) else None
