"""Benchmark the CJK search index (``pages_fts`` since m020) against the index it replaced.

Pages are made of the lab world's own sentences (Korean, English, Chinese, Japanese, Russian,
Spanish, French, as the crawl extracts them), shuffled into pages of about 1 KB, 60% Korean.
The same pages go into two census files: the baseline has the schema before m020 (``unicode61``
over ``pages`` itself, kept by sqlite-utils' triggers), the other the current schema (the
search form, written by the TEMP triggers of ``db.connect``).  Printed: the text's size and
each index's size (``dbstat``), insert time per 1,000 pages, and query time for words as a
user types them (the new index through ``census_match``, the baseline with the ``*`` the old
canned query added, and a ``LIKE`` scan of the text, which is what finding every page with a
piece of a word cost before).

    python bench/bench_search.py                  # 100,000 pages
    python bench/bench_search.py --pages 10000 --keep /tmp/search-bench
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlite_utils

from crawler import migrations
from crawler.crawl.extract import extract
from crawler.db import open_census
from crawler.lab import load_world

QUERIES = ["사랑", "평양", "조선중앙통신", "청년동맹", "朝鲜", "ポータル", "Pyongyang",
           "central news"]


def sentences() -> dict[str, list[str]]:
    """The lab world's sentences by language."""
    world = load_world("kp")
    out: dict[str, list[str]] = {}
    for file in sorted(world.sites_root.rglob("*")):
        if file.suffix not in (".html", ".kcmsf"):
            continue
        page = extract(file.read_bytes(), "http://lab/" + file.name)
        if page.text and page.lang:
            parts = [s.strip() for s in re.split(r"(?<=[.。!?])\s*", page.text) if s.strip()]
            out.setdefault("ko" if page.lang == "ko" else page.lang, []).extend(parts)
    return out


def make_pages(n: int, seed: int = 17) -> list[tuple[str, str, str]]:
    """``n`` (title, lang, text) of about 1 KB each."""
    rng = random.Random(seed)
    pool = sentences()
    langs = [lang for lang in ("ko", "en", "zh", "ja", "ru", "es", "fr") if lang in pool]
    weights = {"ko": 60, "en": 25, "zh": 5, "ja": 5}
    pages = []
    for _ in range(n):
        lang = rng.choices(langs, [weights.get(lang, 2) for lang in langs])[0]
        text: list[str] = []
        while sum(len(s.encode()) for s in text) < 1000:
            text.append(rng.choice(pool[lang]))
        pages.append((rng.choice(pool[lang])[:60], lang, " ".join(text)))
    return pages


def baseline_census(path: Path) -> sqlite_utils.Database:
    """A census with the schema before m020: unicode61 over the page text."""
    db = sqlite_utils.Database(path)
    db.execute("PRAGMA journal_mode = WAL")
    for step in migrations.MIGRATIONS:
        if step.__name__ < "m020":
            step(db)
    return db


def fill(db: sqlite_utils.Database, pages: list[tuple[str, str, str]]) -> float:
    """Insert the pages as the crawl does (one INSERT each, commits every 50); seconds."""
    db["runs"].insert({"id": 1, "zone": "kp", "status": "complete"})
    db["domains"].insert({"name": "kcna.kp", "suffix": "kp"})
    db.conn.commit()
    start = time.perf_counter()
    for i, (title, lang, text) in enumerate(pages, 1):
        db.execute("INSERT INTO pages (run_id, domain, url, title, lang, text) "
                   "VALUES (1, 'kcna.kp', ?, ?, ?, ?)", [f"http://kcna.kp/{i}", title, lang, text])
        if i % 50 == 0:
            db.conn.commit()
    db.conn.commit()
    return time.perf_counter() - start


def sizes(db: sqlite_utils.Database) -> tuple[int, int]:
    """Bytes of the page text (UTF-8) and bytes of the FTS tables on disk."""
    text = db.execute("SELECT sum(length(CAST(text AS BLOB)) + length(CAST(title AS BLOB))) "
                      "FROM pages").fetchone()[0]
    index = db.execute("SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'pages_fts%'").fetchone()[0]
    return text, index


def timed(db: sqlite_utils.Database, sql: str, arg: str, repeat: int = 5) -> tuple[float, int]:
    """Median milliseconds and rows of a query."""
    times, count = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        count = db.execute(sql, [arg]).fetchone()[0]
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="folder to keep the two census files in")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-search-"))
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("baseline.db", "census.db"):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{folder / name}{suffix}").unlink(missing_ok=True)
    pages = make_pages(args.pages)
    old = baseline_census(folder / "baseline.db")
    new = open_census(folder / "census.db")
    old_seconds = fill(old, pages)
    new_seconds = fill(new, pages)
    text, old_index = sizes(old)
    _, new_index = sizes(new)
    per = 1000 / args.pages
    print(f"{args.pages:,} pages, {text / 1e6:.1f} MB of title and text (UTF-8)")
    print(f"index: before m020 {old_index / 1e6:.1f} MB ({old_index / text:.2f}x the text), "
          f"now {new_index / 1e6:.1f} MB ({new_index / text:.2f}x the text; "
          f"{new_index / old_index:.2f}x before)")
    print(f"insert per 1,000 pages: before {old_seconds * per:.2f} s, "
          f"now {new_seconds * per:.2f} s ({new_seconds / old_seconds:.2f}x)")
    print("query ms (rows): now | before, with the old canned query's * | LIKE scan")
    for query in QUERIES:
        now = timed(new, "SELECT count(*) FROM pages WHERE id IN (SELECT rowid FROM pages_fts "
                         "WHERE pages_fts MATCH census_match(?))", query)
        before = timed(old, "SELECT count(*) FROM pages WHERE rowid IN (SELECT rowid FROM "
                            "pages_fts WHERE pages_fts MATCH '\"' || ? || '\"*')", query)
        like = timed(new, "SELECT count(*) FROM pages WHERE coalesce(title, '') || ' ' || "
                          "coalesce(text, '') LIKE '%' || ? || '%'", query, repeat=3)
        print(f"  {query:<14} {now[0]:8.1f} ({now[1]:,}) | {before[0]:8.1f} ({before[1]:,}) "
              f"| {like[0]:8.1f} ({like[1]:,})  LIKE/now {like[0] / max(now[0], 0.01):.0f}x")


if __name__ == "__main__":
    main()
