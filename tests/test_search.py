"""The search form of page text and the queries that find any piece of a CJK word in it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlite_utils

from crawler import migrations, search
from crawler.db import open_census

TEXTS = {
    1: "사랑하는 조국 평양에서 조선중앙통신사 발표",
    2: "사랑의 노래, 북조선 중앙통신",
    3: "中华人民共和国是朝鲜的邻国。",
    4: "日本の朝鮮学校についてのニュース",
    5: "Korean Central News Agency reports from Pyongyang's airport",
    6: "Pyongyangers? No: Pyong-yang and 평양 and 조국",
}


@pytest.fixture()
def census(tmp_path: Path) -> sqlite_utils.Database:
    db = open_census(tmp_path / "census.db")
    db["runs"].insert({"id": 1, "zone": "kp", "status": "complete"})
    db["domains"].insert({"name": "kcna.kp", "suffix": "kp"})
    for page_id, text in TEXTS.items():
        db["pages"].insert({"id": page_id, "run_id": 1, "domain": "kcna.kp",
                            "url": f"http://kcna.kp/{page_id}", "title": "t", "text": text})
    return db


def found(db: sqlite_utils.Database, query: str) -> set[int]:
    return {rowid for (rowid,) in db.execute(
        "SELECT rowid FROM pages_fts WHERE pages_fts MATCH census_match(?)", [query])}


def test_a_cjk_run_is_written_as_its_bigrams_and_its_last_character() -> None:
    assert search.search_text("KCNA평양에서 보도") == "KCNA 평양 양에 에서 서 보도 도"
    assert search.search_text("No CJK here.") == "No CJK here."
    # ASCII text skips the CJK scan: its form is still one space between tokens
    assert search.search_text(" No  CJK\there.\x1c\n") == "No CJK here."
    assert search.search_text("Café  평양") == "Café 평양 양"
    assert search.search_text(None) is None


@pytest.mark.parametrize(
    ("query", "pages"),
    [
        ("사랑", {1, 2}),  # inside 사랑하는 and 사랑의
        ("평양", {1, 6}),
        ("조선중앙통신", {1}),  # the phrase of its bigrams, inside 조선중앙통신사
        ("人民", {3}),
        ("朝鲜", {3}),
        ("学校", {4}),
        ("国", {3}),  # one character: in the middle of a run and closing one
        ("국", {1, 6}),
        ('"북조선 중앙통신"', {2}),
        ('"조선 중앙"', {2}),  # a phrase: where 조선 closes a word and 중앙 opens the next
        ('"평양 조선"', set()),  # 평양에서 조선중앙통신사: 평양 does not close its word
        ("pyongyang", {5}),  # Latin words as before: not Pyongyangers
        ("pyong*", {5, 6}),
        ('"central news"', {5}),
        ("korean OR 学校", {4, 5}),
        ("(사랑 OR 人民) 평양", {1}),
        ("평양 NOT 사랑", {6}),
        ("title:t", set(TEXTS)),
        ("text:조국", {1, 6}),
        ('unbalanced "평양', set()),
        ("", set()),
        ("AND OR (", set()),
    ],
)
def test_a_query_finds_the_pages_that_contain_it(
    census: sqlite_utils.Database, query: str, pages: set[int]
) -> None:
    assert found(census, query) == pages


def indexed(db: sqlite_utils.Database) -> int:
    db.execute("INSERT INTO pages_fts(pages_fts) VALUES ('integrity-check')")
    return db.execute("SELECT count(*) FROM pages_fts_docsize").fetchone()[0]


def test_pages_written_updated_and_deleted_keep_the_index(census: sqlite_utils.Database) -> None:
    census["pages"].update(5, {"text": "사랑과 평화"})
    assert found(census, "사랑") == {1, 2, 5}
    assert found(census, "pyongyang") == set()
    census["pages"].delete(1)
    assert found(census, "사랑") == {2, 5}
    assert indexed(census) == len(TEXTS) - 1
    assert census["pages_fts_pending"].count == 0


def test_what_another_client_deletes_or_changes_leaves_the_index_on_next_open(
    census: sqlite_utils.Database, tmp_path: Path
) -> None:
    census.close()
    other = sqlite3.connect(tmp_path / "census.db")  # no census functions, no TEMP triggers
    with other:
        other.execute("DELETE FROM pages WHERE id = 1")
        other.execute("UPDATE pages SET text = '사랑과 평화' WHERE id = 5")
        other.execute("INSERT INTO pages (id, run_id, domain, text) VALUES (1, 1, 'kcna.kp', 'x')")
        other.execute("DELETE FROM pages WHERE id = 1")
    other.close()

    db = open_census(tmp_path / "census.db")

    assert found(db, "사랑") == {2}  # 5 is out of the index until reindex()
    assert found(db, "pyongyang") == set()
    assert indexed(db) == len(TEXTS) - 2
    assert search.reindex(db.conn) == len(TEXTS) - 1
    assert found(db, "사랑") == {2, 5}


def test_title_matches_rank_first(census: sqlite_utils.Database) -> None:
    census["pages"].insert({"id": 7, "run_id": 1, "domain": "kcna.kp", "url": "http://kcna.kp/7",
                            "title": "평양의 소식", "text": "오늘 소식입니다."})
    ranked = [r for (r,) in census.execute(
        "SELECT rowid FROM pages_fts WHERE pages_fts MATCH census_match('평양') ORDER BY rank")]
    assert ranked[0] == 7 and set(ranked) == {1, 6, 7}


def test_snippet_brackets_the_first_word_found() -> None:
    assert search.snippet(TEXTS[1], "조선중앙통신", width=5) == "…평양에서 [조선중앙통신]사 발표"
    assert search.snippet("no match here", "평양") == "no match here"


def test_an_older_census_is_reindexed_with_its_rows(tmp_path: Path) -> None:
    db = sqlite_utils.Database(tmp_path / "old.db")
    for step in migrations.MIGRATIONS:
        if step.__name__ < "m020":
            step(db)
    db["runs"].insert({"id": 1, "zone": "kp"})
    db["domains"].insert({"name": "kcna.kp"})
    db["pages"].insert({"id": 9, "run_id": 1, "domain": "kcna.kp", "title": "조선중앙통신",
                        "text": "사랑하는 평양시민들"})
    assert not db.execute("SELECT * FROM pages_fts WHERE pages_fts MATCH '사랑'").fetchall()
    db.close()

    db = open_census(tmp_path / "old.db")

    assert "m020_cjk_search" in migrations.applied(db)
    assert found(db, "사랑") == found(db, "시민") == found(db, "중앙통신") == {9}
    assert db["pages"].get(9)["text"] == "사랑하는 평양시민들"
