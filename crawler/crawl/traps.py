"""Trap defences: which URLs the spider will not follow, by the rules in ``data/traps.txt``.

A family of numbered URLs is not a trap by itself: news sites name their articles
``/article/AR0125885.kcmsf`` or ``/news/12345.html``, and a family linked from index pages is
content, bounded only by the page budget.  What is cut is what never ends:

- a *chain*: a numbered URL found on a page of its own family, found on a page of its own
  family, ... more than ``max-chain`` links deep (a calendar's previous/next month, a counter
  whose every page links one step further).  The family of a URL is its path and query up to
  the first segment that holds a digit, so ``/cal/2016/09/`` and ``/cal/2016/09/01/`` are one
  family, ``/news/list/2.html`` and ``/news/123.html`` are two;
- a *date past the content*: a URL dated more than ``max-future-days`` after today;
- session ids, actions and downloads, by regex; overlong URLs, too many query parameters,
  repeated path segments.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from urllib.parse import parse_qsl, urlsplit

_DIGIT = re.compile(r"\d")
_DATE = re.compile(
    r"(?<!\d)((?:19|20)\d\d)([/_-]?)(0[1-9]|1[0-2])(?:\2(0[1-9]|[12]\d|3[01]))?(?!\d)"
)


@dataclass
class TrapRules:
    max_url_length: int = 1024
    max_query_params: int = 8
    max_repeated_segment: int = 2
    max_chain: int = 3
    max_future_days: int = 366
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


def family(url: str) -> str | None:
    """The numbered family of ``url``: path and query up to the first segment with a digit;
    None when the URL holds no digit (it belongs to no family)."""
    parts = urlsplit(url)
    rest = f"{parts.path}?{parts.query}" if parts.query else parts.path
    m = _DIGIT.search(rest)
    if m is None:
        return None
    cut = max(rest.rfind("/", 0, m.start()), rest.rfind("?", 0, m.start()),
              rest.rfind("&", 0, m.start()))
    return rest[: cut + 1]


def url_date(url: str) -> dt.date | None:
    """The first calendar date a URL's path or query spells (``2016/09``, ``2016-09-14``,
    ``20160914``), or None."""
    parts = urlsplit(url)
    for m in _DATE.finditer(f"{parts.path}?{parts.query}"):
        try:
            return dt.date(int(m.group(1)), int(m.group(3)), int(m.group(4) or 1))
        except ValueError:
            continue
    return None


@dataclass(frozen=True)
class Verdict:
    why: str | None
    """The rule that cuts the URL, or None to follow it."""
    chain: int = 0
    """How many links deep the URL sits in a chain of its own family."""


class TrapFilter:
    """Judges each followed URL by the rules, knowing the page that linked it."""

    def __init__(self, rules: TrapRules | None = None, today: dt.date | None = None) -> None:
        self.rules = rules or TrapRules.load()
        self.today = today or dt.date.today()

    def judge(self, url: str, found_on: str | None = None, found_chain: int = 0) -> Verdict:
        """Whether to follow ``url``, found on the page ``found_on`` that sat ``found_chain``
        links deep in a chain of its own family."""
        try:
            own = family(url)
        except ValueError:  # "http://[" : not a URL any downloader could fetch
            return Verdict("bad-url")
        chain = found_chain + 1 if own is not None and found_on and family(found_on) == own else 0
        return Verdict(self._why(url, chain), chain)

    def why_trap(self, url: str, found_on: str | None = None, found_chain: int = 0) -> str | None:
        """The reason ``url`` looks like a trap, or None to follow it."""
        return self.judge(url, found_on, found_chain).why

    def _why(self, url: str, chain: int) -> str | None:
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
        if chain > rules.max_chain:
            return "endless-chain"
        date = url_date(url)
        if date and (date - self.today).days > rules.max_future_days:
            return "future-date"
        return None
