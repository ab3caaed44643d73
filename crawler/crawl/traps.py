"""Trap defences: which URLs the spider will not follow, by the rules in ``data/traps.txt``."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from urllib.parse import parse_qsl, urlsplit

_DIGITS = re.compile(r"\d+")


@dataclass
class TrapRules:
    max_url_length: int = 1024
    max_query_params: int = 8
    max_repeated_segment: int = 2
    max_pattern: int = 25
    regexes: list[re.Pattern[str]] = field(default_factory=list)

    @classmethod
    def load(cls, text: str | None = None) -> TrapRules:
        if text is None:
            text = (resources.files("crawler") / "data" / "traps.txt").read_text(encoding="utf-8")
        rules = cls()
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            kind, _, value = line.partition(" ")
            if kind == "regex":
                rules.regexes.append(re.compile(value))
            else:
                setattr(rules, kind.replace("-", "_"), int(value))
        return rules


class TrapFilter:
    """Remembers the URL patterns seen per site, so endless families of URLs get cut."""

    def __init__(self, rules: TrapRules | None = None) -> None:
        self.rules = rules or TrapRules.load()
        self.patterns: Counter[tuple[str, str]] = Counter()

    def why_trap(self, url: str, site: str) -> str | None:
        """The reason ``url`` looks like a trap, or None to follow it."""
        rules = self.rules
        if len(url) > rules.max_url_length:
            return "url-too-long"
        try:
            parts = urlsplit(url)
        except ValueError:  # "http://[" : not a URL any downloader could fetch
            return "bad-url"
        if len(parse_qsl(parts.query, keep_blank_values=True)) > rules.max_query_params:
            return "too-many-query-params"
        segments = [s for s in parts.path.split("/") if s]
        if segments and max(Counter(segments).values()) > rules.max_repeated_segment:
            return "repeated-path-segment"
        for regex in rules.regexes:
            if regex.search(url):
                return f"regex:{regex.pattern}"
        if _DIGITS.search(url):
            key = (site, _DIGITS.sub("0", f"{parts.path}?{parts.query}"))
            self.patterns[key] += 1
            if self.patterns[key] > rules.max_pattern:
                return "pattern-budget"
        return None
