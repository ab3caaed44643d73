"""Pages the lab server makes instead of reading files: a numbered article family and an
endless numbered generator, so the crawler's trap rules are tested on both kinds.

A *family* is what a news site publishes: ``count`` articles named ``AR00001.html``... under
a prefix, listed ``per_index`` at a time on index pages that link to every other index page;
each article links to its neighbours.  It is content: a crawler should take all of it.  An
*endless* generator is what a broken CMS makes: page N links only to page N+1, forever.
"""

from __future__ import annotations

from dataclasses import dataclass

_WORDS = [
    "delegation", "factory", "harvest", "railway", "bridge", "congress", "steel", "science",
    "youth", "culture", "theatre", "museum", "province", "county", "village", "fishing", "coast",
    "mountain", "forest", "cooperative", "production", "school", "university", "trade", "export",
    "machine", "power", "plant", "meeting", "visit", "friendship", "history",
]


@dataclass(frozen=True)
class Family:
    prefix: str
    count: int
    per_index: int = 10

    def article(self, n: int) -> str:
        return f"{self.prefix}AR{n:05d}.html"

    def index(self, page: int) -> str:
        return self.prefix if page == 1 else f"{self.prefix}list/{page}.html"

    @property
    def pages(self) -> int:
        return -(-self.count // self.per_index)

    def render(self, path: str) -> str | None:
        """The page at ``path``, or None when the family has none there."""
        rest = path[len(self.prefix) :]
        if rest in ("", "index.html"):
            return self._index(1)
        if rest.startswith("list/") and rest.endswith(".html"):
            number = rest[5:-5]
            if number.isdigit() and 1 <= int(number) <= self.pages:
                return self._index(int(number))
        if rest.startswith("AR") and rest.endswith(".html") and rest[2:-5].isdigit():
            n = int(rest[2:-5])
            if 1 <= n <= self.count:
                return self._article(n)
        return None

    def _index(self, page: int) -> str:
        first = (page - 1) * self.per_index + 1
        items = "".join(
            f'<li><a href="{self.article(n)}">Article {n}: {_title(n)}</a></li>'
            for n in range(first, min(first + self.per_index, self.count + 1))
        )
        pager = " ".join(f'<a href="{self.index(p)}">{p}</a>' for p in range(1, self.pages + 1))
        return (
            f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>News, page {page}</title></head><body><h1>News, page {page}</h1>"
            f"<ul>{items}</ul><p>{pager}</p></body></html>"
        )

    def _article(self, n: int) -> str:
        near = "".join(
            f'<a href="{self.article(m)}">Article {m}</a> '
            for m in (n - 1, n + 1)
            if 1 <= m <= self.count
        )
        return (
            f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{_title(n)}</title></head><body><h1>{_title(n)}</h1>"
            f"<p>{_body(n)}</p><p>{near}<a href='{self.prefix}'>All news</a></p>"
            f"</body></html>"
        )


def _title(n: int) -> str:
    return f"The {_WORDS[n % len(_WORDS)]} of the {_WORDS[(n * 7) % len(_WORDS)]} ({n})"


def _body(n: int) -> str:
    words = [_WORDS[(n * 13 + i * 5) % len(_WORDS)] for i in range(40)]
    return f"Report number {n}. The " + " and the ".join(words) + " were visited this week."


def endless_page(prefix: str, path: str) -> str:
    """Page N of an endless counter: it links to page N + 1 only."""
    number = path[len(prefix) :].strip("/")
    n = int(number) if number.isdigit() and len(number) < 9 else 1
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Archive {n}</title></head><body><h1>Archive {n}</h1>"
        f"<p>{_body(n)}</p><a href='{prefix}{n + 1}/'>More</a></body></html>"
    )
