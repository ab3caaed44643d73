"""Full-text search of pages in Korean, Chinese and Japanese as well as in Latin script.

SQLite's ``unicode61`` tokenizer makes a word of every run of letters, so ``사랑하는`` is one
token that ``사랑`` does not match, and a Chinese or Japanese sentence is a single token.
Trigrams miss two-syllable Korean nouns.  So ``pages_fts`` indexes a *search form* of each
page's title and text, written when the page row is written: Latin-script text as it is, and
every Hangul, Han or Kana run as its overlapping character bigrams followed by its last
character (``평양에서`` -> ``평양 양에 에서 서``).  Every character then starts exactly one token
of its run, so any piece of a run is found: two characters are one bigram, longer pieces the
phrase of their bigrams, one character a prefix of a token.

The query side (:func:`match_query`) turns what a user types into that FTS5 query; it is
the ``escape_fts`` of ``census serve`` (the table search box and ``?_search=``) and the
``census_match`` SQL function of the ``search_pages`` canned query, so all three agree.
Writers get the index kept by :func:`attach`, which ``db.connect`` (every writable
connection, the crawl's pipeline's too) and ``open_census`` call: it adds TEMP triggers to
the connection, so nothing in the file itself needs a Python function: any other SQLite
client can still read, delete and write the census (a page it deletes or changes leaves the
index when a census connection next opens; a page it inserts is missing from search until
:func:`reindex`).
"""

from __future__ import annotations

import logging
import re
import sqlite3

log = logging.getLogger(__name__)

FTS_TABLE = "pages_fts"

TITLE_WEIGHT = 10.0
"""bm25 weight of a title match against 1.0 for the text: title matches rank first."""

_CJK = (
    "\u1100-\u11ff"  # Hangul Jamo
    "\u2e80-\u2fdf"  # CJK radicals
    "\u3005\u3007"  # 々 〇
    "\u3041-\u309f"  # Hiragana
    "\u30a0-\u30ff"  # Katakana (with ー)
    "\u3130-\u318f"  # Hangul compatibility Jamo
    "\u31f0-\u31ff"  # Katakana phonetic extensions
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\ua960-\ua97f"  # Hangul Jamo extended-A
    "\uac00-\ud7af"  # Hangul syllables
    "\ud7b0-\ud7ff"  # Hangul Jamo extended-B
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\uff66-\uffdc"  # halfwidth Katakana and Hangul
    "\U00020000-\U0003134f"  # CJK extensions B-G
)
CJK_RUN = re.compile(f"[{_CJK}]+")

# what a user types: a quoted phrase (quotes doubled inside), parentheses, or a bare word
_QUERY_PART = re.compile(r'"((?:[^"]|"")*)("|$)(\*?)|([()])|([^\s()"]+)')
_OPERATORS = {"AND", "OR", "NOT"}
_COLUMN = re.compile(r"^(title|text):(.*)$")


def _run_tokens(run: str) -> list[str]:
    """A CJK run as its bigrams and its last character."""
    return [run[i : i + 2] for i in range(len(run) - 1)] + [run[-1]]


def search_text(value: str | None) -> str | None:
    """The search form of a title or text: CJK runs as bigrams, everything else as it is."""
    if not value:
        return value
    if value.isascii():  # no CJK run possible: skip the scan (O(1) for an ASCII str)
        return " ".join(value.split())
    form = CJK_RUN.sub(lambda m: " " + " ".join(_run_tokens(m.group())) + " ", value)
    return " ".join(form.split())  # one space between tokens: the form is stored, keep it small


def _phrase(words: str, prefix: bool) -> str:
    """The FTS5 phrase that finds ``words`` anywhere in a page, CJK runs included."""
    runs = list(CJK_RUN.finditer(words))
    if not runs:
        if not re.search(r"\w", words):
            return ""
        return '"' + words.replace('"', '""') + '"' + ("*" if prefix else "")
    form = search_text(words) or ""
    last = runs[-1]
    if not re.search(r"\w", words[last.end() :]):
        # the last run may go on in the text: drop its closing character, or, if that is all
        # it has, let it be the start of any token
        if len(last.group()) > 1:
            form = form.rstrip()[: -len(last.group()[-1])]
        else:
            prefix = True
    return '"' + form.strip().replace('"', '""') + '"' + ("*" if prefix else "")


def match_query(query: str | None) -> str:
    """The FTS5 expression of ``pages_fts`` for what a user typed.

    Words and ``"quoted phrases"`` must all be there; ``word*`` is a prefix; ``AND``, ``OR``,
    ``NOT`` and parentheses combine them; ``title:word`` looks in titles only.  A Korean,
    Chinese or Japanese word is found inside longer runs (``사랑`` in ``사랑하는``).  Anything
    else FTS5 would reject is quoted, so a query never fails to parse.
    """
    out: list[str] = []
    depth = 0
    for m in _QUERY_PART.finditer(query or ""):
        quoted, _, star, paren, bare = m.groups()
        if paren == "(":
            if out and out[-1] not in _OPERATORS and out[-1] != "(":
                out.append("AND")
            out.append("(")
            depth += 1
            continue
        if paren == ")":
            if depth and out and out[-1] != "(" and out[-1] not in _OPERATORS:
                out.append(")")
                depth -= 1
            continue
        if bare in _OPERATORS:
            if out and out[-1] not in _OPERATORS and out[-1] != "(":
                out.append(bare)
            continue
        column = ""
        if bare is not None:
            column_match = _COLUMN.match(bare)
            if column_match and column_match.group(2):
                column, bare = column_match.group(1), column_match.group(2)
            prefix = bare.endswith("*")
            term = _phrase(bare.rstrip("*"), prefix)
        else:
            term = _phrase(quoted.replace('""', '"'), bool(star))
        if term:
            if out and out[-1] == ")":
                out.append("AND")
            out.append(f"{column} : {term}" if column else term)
    while out and (out[-1] in _OPERATORS or out[-1] == "("):
        if out.pop() == "(":
            depth -= 1
    out += [")"] * depth
    return " ".join(out) if out else '""'


PENDING = "pages_fts_pending"
"""Pages deleted or changed, with the title and text they were indexed with, until an
attached connection takes them out of the index (at once for its own writes)."""

_FORM = "census_search_text({0}.title), census_search_text({0}.text)"


def create_index(conn: sqlite3.Connection) -> None:
    """``pages_fts``: contentless (only the index is stored), ranked title first.

    A contentless FTS5 table forgets a document only when told the values it was indexed
    with, and SQLite before 3.43 has no ``contentless_delete``.  So the file's own triggers,
    plain SQL that any client runs, queue the old title and text of a page that is deleted or
    changed in ``pages_fts_pending``; the TEMP triggers of :func:`attach` turn them into
    FTS5 ``delete`` commands.
    """
    conn.execute(f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(title, text, content='')")
    conn.execute(
        f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rank) VALUES ('rank', 'bm25({TITLE_WEIGHT}, 1.0)')"
    )
    conn.execute(f"CREATE TABLE {PENDING} (id INTEGER, title TEXT, text TEXT)")
    conn.execute(
        f"CREATE TRIGGER pages_fts_forget_deleted AFTER DELETE ON pages BEGIN "
        f"INSERT INTO {PENDING} (id, title, text) VALUES (old.id, old.title, old.text); END"
    )
    # BEFORE: the old form leaves the index before the new one is written
    conn.execute(
        f"CREATE TRIGGER pages_fts_forget_changed BEFORE UPDATE OF id, title, text ON pages "
        f"BEGIN INSERT INTO {PENDING} (id, title, text) VALUES (old.id, old.title, old.text); END"
    )


def reindex(conn: sqlite3.Connection) -> int:
    """Write the search form of every page into ``pages_fts``; return how many pages."""
    register_functions(conn)
    conn.execute(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('delete-all')")
    conn.execute(f"DELETE FROM {PENDING}")
    conn.execute(
        f"INSERT INTO {FTS_TABLE}(rowid, title, text) SELECT id, {_FORM.format('pages')} "
        "FROM pages"
    )
    return conn.execute(f"SELECT count(*) FROM {FTS_TABLE}_docsize").fetchone()[0]


def register_functions(conn: sqlite3.Connection) -> None:
    """``census_search_text(value)``, ``census_match(query)`` and ``census_snippet(text,
    query)`` on ``conn``."""
    conn.create_function("census_search_text", 1, search_text, deterministic=True)
    conn.create_function("census_match", 1, match_query, deterministic=True)
    conn.create_function("census_snippet", 2, snippet, deterministic=True)


def has_index(conn: sqlite3.Connection) -> bool:
    """Whether the census has the CJK search index (migration m020 and later)."""
    return bool(conn.execute(
        "SELECT 1 FROM sqlite_master WHERE name = ? AND type = 'table'", [PENDING]
    ).fetchone())


# the first queued version of a page is the one in the index, if it is there at all
_INDEXED = (
    f"EXISTS (SELECT 1 FROM {FTS_TABLE}_docsize WHERE id = {{0}}.id) AND NOT EXISTS "
    f"(SELECT 1 FROM {PENDING} AS earlier WHERE earlier.id = {{0}}.id "
    f"AND earlier.rowid < {{0}}.rowid)"
)

_TEMP_TRIGGERS = [
    f"""CREATE TEMP TRIGGER IF NOT EXISTS census_pages_fts_forget
    AFTER INSERT ON main.{PENDING} BEGIN
        INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, title, text)
            SELECT 'delete', new.id, {_FORM.format("new")} WHERE {_INDEXED.format("new")};
        DELETE FROM {PENDING} WHERE rowid = new.rowid;
    END""",
    f"""CREATE TEMP TRIGGER IF NOT EXISTS census_pages_fts_insert
    AFTER INSERT ON main.pages BEGIN
        INSERT INTO {FTS_TABLE}(rowid, title, text) VALUES (new.id, {_FORM.format("new")});
    END""",
    f"""CREATE TEMP TRIGGER IF NOT EXISTS census_pages_fts_update
    AFTER UPDATE OF id, title, text ON main.pages BEGIN
        INSERT INTO {FTS_TABLE}(rowid, title, text) VALUES (new.id, {_FORM.format("new")});
    END""",
]


def forget_pending(conn: sqlite3.Connection) -> int:
    """Take out of the index the pages other clients deleted or changed; how many."""
    queued = conn.execute(f"SELECT rowid, id, title, text FROM {PENDING} ORDER BY rowid")
    rows = queued.fetchall()
    if not rows:
        return 0
    register_functions(conn)
    seen: set[int] = set()
    with conn:
        for _, page_id, title, text in rows:
            if page_id in seen:
                continue
            seen.add(page_id)
            conn.execute(
                f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, title, text) SELECT 'delete', ?, "
                f"census_search_text(?), census_search_text(?) "
                f"WHERE EXISTS (SELECT 1 FROM {FTS_TABLE}_docsize WHERE id = ?)",
                [page_id, title, text, page_id],
            )
        conn.execute(f"DELETE FROM {PENDING} WHERE rowid <= ?", [rows[-1][0]])
    return len(seen)


def attach(conn: sqlite3.Connection) -> None:
    """Keep ``pages_fts`` up to date with what ``conn`` writes to ``pages``.

    TEMP triggers live in the connection only: the census file holds no trigger that needs
    this module's functions.  Pages other clients deleted or changed leave the index here.
    """
    if not has_index(conn):
        return
    register_functions(conn)
    for sql in _TEMP_TRIGGERS:
        conn.execute(sql)
    try:
        forget_pending(conn)
    except sqlite3.OperationalError as e:  # busy: the next connection takes them out
        log.warning("pages_fts_pending left for later: %s", e)


def _needles(query: str) -> list[str]:
    """The words and phrases of a query, as they would appear in the text."""
    needles = []
    for m in _QUERY_PART.finditer(query or ""):
        quoted, _, _, _, bare = m.groups()
        if bare in _OPERATORS:
            continue
        word = quoted.replace('""', '"') if bare is None else _COLUMN.sub(r"\2", bare)
        word = word.strip().rstrip("*")
        if word:
            needles.append(word.casefold())
    return needles


def snippet(text: str | None, query: str | None, width: int = 40) -> str | None:
    """Where the first word of ``query`` is in ``text``, in brackets, with ``width``
    characters around it (FTS5's own snippet() would show the search form)."""
    if not text:
        return None
    folded = text.casefold()
    found = [(folded.find(n), n) for n in _needles(query or "")]
    found = [(i, n) for i, n in found if i >= 0]
    if not found or len(folded) != len(text):
        return text[: 2 * width] + ("…" if len(text) > 2 * width else "")
    start, needle = min(found)
    end = start + len(needle)
    return (
        ("…" if start > width else "")
        + _one_line(text[max(0, start - width) : start])
        + "[" + text[start:end] + "]"
        + _one_line(text[end : end + width])
        + ("…" if end + width < len(text) else "")
    )


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text)
