"""Cue lexicons: words a researcher can read, weigh and extend, found in the fields of a site.

The lexicons live in ``crawler/data/lexicons/*.toml`` (one file per language, plus
``names.toml`` for suffixes and host tokens).  Cues are the explainable half of the
classifier: every point they give is a term, a field and a weight that the evidence shows.

Latin and Cyrillic terms match whole words, case- and accent-insensitively; a trailing ``*``
matches any ending.  Terms in Hangul, Han or Kana match as substrings, and where matches overlap
the longest wins (통신사 is news, not 통신, telecom).
"""

from __future__ import annotations

import math
import re
import tomllib
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

# How much a cue counts where it is found: a word in the title says more than one in the body.
FIELD_WEIGHTS = {
    "host": 2.0,
    "json-ld": 1.0,
    "title": 3.0,
    "description": 2.0,
    "headings": 2.0,
    "anchors": 0.5,  # menu and footer words: a "News" link does not make a news site
    "text": 1.0,
}

_WORD = re.compile(r"[^\W\d_]+")
_MARKS = re.compile(r"[\u0300-\u036f]")
# Hangul, Kana and Han: scripts written without reliable word spaces
_CJK = re.compile(
    r"[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]"
)
_HOST_SPLIT = re.compile(r"[.\-_0-9]+")


def fold(text: str) -> str:
    """Lower case without accents, so ``Ministère`` and ``ministere`` are one word."""
    text = unicodedata.normalize("NFKC", text).lower()
    if text.isascii():
        return text
    return unicodedata.normalize("NFC", _MARKS.sub("", unicodedata.normalize("NFD", text)))


def words(text: str) -> list[str]:
    return _WORD.findall(fold(text))


@dataclass(frozen=True)
class Hit:
    """One cue found: the term as written in the lexicon, where, and the points it gave."""

    label: str
    term: str
    where: str
    weight: float


@dataclass
class CueScores:
    scores: dict[str, float] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(self.scores.values())

    def add(self, hit: Hit) -> None:
        self.scores[hit.label] = self.scores.get(hit.label, 0.0) + hit.weight
        self.hits.append(hit)


def _data(name: str) -> dict[str, Any]:
    path = resources.files("crawler") / "data" / name
    return tomllib.loads(path.read_text(encoding="utf-8"))


@cache
def taxonomy() -> dict[str, dict[str, Any]]:
    """Labels in report order, with their descriptions (``crawler/data/taxonomy.toml``)."""
    return _data("taxonomy.toml")


class Lexicon:
    """All cue words of all languages, indexed for matching."""

    def __init__(self, tables: dict[str, dict[str, dict[str, float]]], names: dict[str, Any]):
        # term (folded) -> {label: weight}; the display form is kept for the evidence
        self.words: dict[str, dict[str, float]] = defaultdict(dict)
        self.phrases: dict[int, dict[str, dict[str, float]]] = defaultdict(
            lambda: defaultdict(dict)
        )
        self.prefixes: dict[str, dict[str, float]] = defaultdict(dict)
        self.substrings: dict[str, dict[str, float]] = defaultdict(dict)
        self.display: dict[str, str] = {}
        self.languages = sorted(tables)
        for by_label in tables.values():
            for label, terms in by_label.items():
                for term, weight in terms.items():
                    self._add(label, term, float(weight))
        self.prefix_lengths = sorted({len(p) for p in self.prefixes})
        self.suffixes: dict[str, dict[str, float]] = names.get("suffixes", {})
        self.host_tokens: dict[str, dict[str, float]] = names.get("host_tokens", {})
        self.parked: list[str] = [fold(p) for p in names.get("parked", {}).get("phrases", [])]
        self.schema_types: dict[str, dict[str, float]] = names.get("schema_types", {})

    def _add(self, label: str, term: str, weight: float) -> None:
        if weight <= 0:
            return
        if _CJK.search(term):
            key = unicodedata.normalize("NFKC", term).lower()
            table = self.substrings
        elif term.endswith("*"):
            key = " ".join(words(term[:-1]))
            table = self.prefixes
        else:
            parts = words(term)
            key = " ".join(parts)
            table = self.words if len(parts) == 1 else self.phrases[len(parts)]
        if not key:
            return
        table[key][label] = max(weight, table[key].get(label, 0.0))
        self.display.setdefault(key, term)

    def match(self, text: str, where: str, scores: CueScores) -> None:
        """Add to ``scores`` every cue of ``text``, found in the field ``where``."""
        if not text:
            return
        factor = FIELD_WEIGHTS.get(where, 1.0)
        found: dict[tuple[str, str], tuple[int, float]] = {}
        tokens = words(text)
        counts = Counter(tokens)
        for token, n in counts.items():
            best: dict[str, tuple[float, str]] = {}
            for label, w in self.words.get(token, {}).items():
                best[label] = max(best.get(label, (0.0, "")), (w, token))
            for length in self.prefix_lengths:
                if length > len(token):
                    break
                for label, w in self.prefixes.get(token[:length], {}).items():
                    best[label] = max(best.get(label, (0.0, "")), (w, token[:length]))
            for label, (w, key) in best.items():
                seen = found.get((label, key), (0, w))[0]
                found[(label, key)] = (seen + n, w)
        for size, table in self.phrases.items():
            grams = Counter(" ".join(tokens[i:i + size]) for i in range(len(tokens) - size + 1))
            for gram in grams.keys() & table.keys():
                for label, w in table[gram].items():
                    found[(label, gram)] = (grams[gram], w)
        if _CJK.search(text):
            for term, n in self._substring_counts(unicodedata.normalize("NFKC", text).lower()):
                for label, w in self.substrings[term].items():
                    found[(label, term)] = (n, w)
        for (label, key), (n, w) in found.items():
            points = w * factor * (1.0 + math.log(n))
            scores.add(Hit(label, self.display.get(key, key), where, round(points, 2)))

    def _substring_counts(self, folded: str) -> list[tuple[str, int]]:
        """Occurrences of substring terms, longest first, each span counted once."""
        present = sorted((t for t in self.substrings if t in folded), key=len, reverse=True)
        covered = bytearray(len(folded))
        counts = []
        for term in present:
            n, start = 0, folded.find(term)
            while start >= 0:
                end = start + len(term)
                if any(covered[start:end]):
                    start = folded.find(term, start + 1)
                    continue
                covered[start:end] = b"\x01" * len(term)
                n += 1
                start = folded.find(term, end)
            if n:
                counts.append((term, n))
        return counts

    def name_cues(self, domain: str, suffix: str | None, scores: CueScores) -> str | None:
        """Cues of the suffix and host tokens; return the suffix that matched, if any."""
        domain = domain.lower().strip(".")
        matched = suffix if suffix in self.suffixes else None
        if matched is None:
            labels = domain.split(".")
            for i in range(1, len(labels)):
                candidate = ".".join(labels[i:])
                if candidate in self.suffixes:
                    matched = candidate
                    break
        if matched:
            for label, w in self.suffixes[matched].items():
                scores.add(Hit(label, matched, "suffix", float(w)))
        host = domain[: -len(matched) - 1] if matched and domain.endswith("." + matched) else domain
        if not matched and "." in host:
            host = host.rsplit(".", 1)[0]
        for token in filter(None, _HOST_SPLIT.split(host)):
            if token == "www":
                continue
            for key, by_label in self.host_tokens.items():
                hit = token == key or (
                    len(key) >= 4 and (token.startswith(key) or token.endswith(key))
                )
                if hit:
                    for label, w in by_label.items():
                        scores.add(Hit(label, key, "host", float(w) * FIELD_WEIGHTS["host"] / 2))
        return matched

    def schema_cues(self, types: list[str], scores: CueScores) -> None:
        """Cues of the schema.org ``@type``s a site declares about itself."""
        for name in dict.fromkeys(types):
            for label, w in self.schema_types.get(name, {}).items():
                scores.add(Hit(label, name, "json-ld", float(w)))

    def is_parked(self, text: str) -> str | None:
        """The parked-page phrase ``text`` shows, if it is short enough to be only that."""
        folded = fold(text)
        if len(folded) > 600:
            return None
        return next((p for p in self.parked if p in folded), None)


@cache
def lexicon() -> Lexicon:
    folder = resources.files("crawler") / "data" / "lexicons"
    tables = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml") and entry.name != "names.toml":
            tables[entry.name.removesuffix(".toml")] = tomllib.loads(
                entry.read_text(encoding="utf-8")
            )
    return Lexicon(tables, _data("lexicons/names.toml"))
