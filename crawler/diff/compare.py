"""Comparing two runs: choose them, run the SQL, diff changed pages, store ``changes``.

The only module of the package that writes to the census; the rest choose, find or print.
"""

from __future__ import annotations

import difflib
import logging

import sqlite_utils

from ..db import get_run
from .choose import choose_baseline, choose_runs
from .formats import Diff
from .kinds import Change, changes_from_rows
from .sql import drop_temp_tables, find_changes

log = logging.getLogger(__name__)

DIFF_MAX_LINES = 200
DIFF_MAX_BYTES = 20_000

_TEXT = (
    "SELECT coalesce(p.text, (SELECT text FROM pages WHERE id = p.revisit_of)), p.sha256 "
    "FROM pages AS p WHERE p.id = ?"
)


def compare_runs(
    db: sqlite_utils.Database,
    run_a: int | None = None,
    run_b: int | None = None,
    *,
    zone: str | None = None,
    force: bool = False,
    write: bool = True,
) -> Diff:
    """Compare two runs (defaults: see :mod:`crawler.diff.choose`) and replace their rows in
    ``changes``."""
    a, b, notes = choose_runs(db, run_a, run_b, zone=zone, force=force)
    log.info("comparing run %d with run %d", a["id"], b["id"])
    changes = _compute(db, a["id"], b["id"], write=write)
    return Diff(zone=a["zone"], run_a=a, run_b=b, changes=changes, notes=notes)


def compare_with_previous(db: sqlite_utils.Database, run_id: int) -> Diff | None:
    """The compare stage of a run: diff ``run_id`` (possibly still running) with its baseline.

    The baseline is the latest finished run of the same zone before it; None when there is
    none (the first census of a zone).
    """
    chosen = choose_baseline(db, run_id)
    if chosen is None:
        return None
    a, run, notes = chosen
    changes = _compute(db, a["id"], run_id, write=True)
    return Diff(zone=run["zone"], run_a=a, run_b=run, changes=changes, notes=notes)


def refresh_changes(db: sqlite_utils.Database, run_ids: list[int]) -> int:
    """Compare again every stored pair of runs that involves ``run_ids``; return how many.

    ``changes`` is derived from the runs' rows: when a label or a classification of a run
    changes, its stored changes and the report follow at once, not at the next diff.
    """
    if not run_ids:
        return 0
    marks = ", ".join("?" * len(run_ids))
    pairs = db.execute(
        f"SELECT DISTINCT from_run, to_run FROM changes WHERE from_run IN ({marks}) "
        f"OR to_run IN ({marks})",
        [*run_ids, *run_ids],
    ).fetchall()
    for a, b in pairs:
        _compute(db, a, b, write=True)
    return len(pairs)


def load_changes(db: sqlite_utils.Database, run_a: int, run_b: int) -> list[Change]:
    """The changes stored for a pair of runs, in report order."""
    get_run(db, run_a)
    get_run(db, run_b)
    rows = db.execute(
        "SELECT kind, subject, domain, before, after, detail FROM changes "
        "WHERE from_run = ? AND to_run = ?",
        [run_a, run_b],
    ).fetchall()
    return changes_from_rows(rows)


def _compute(db: sqlite_utils.Database, a: int, b: int, *, write: bool) -> list[Change]:
    conn = db.conn
    find_changes(conn, a, b)
    _page_diffs(db, a, b)
    rows = conn.execute(
        "SELECT kind, subject, domain, before, after, detail FROM diff_out"
    ).fetchall()
    if write:
        with conn:
            conn.execute("DELETE FROM changes WHERE from_run = ? AND to_run = ?", [a, b])
            conn.execute(
                "INSERT INTO changes (from_run, to_run, kind, subject, domain, before, after, "
                "detail) SELECT ?, ?, kind, subject, domain, before, after, detail "
                "FROM diff_out ORDER BY rowid",
                [a, b],
            )
    drop_temp_tables(conn)
    return changes_from_rows(rows)


def _page_diffs(db: sqlite_utils.Database, a: int, b: int) -> None:
    """Add the ``page_changed`` rows, each with a bounded unified diff of the text."""
    conn = db.conn
    pairs = conn.execute(
        "SELECT url, domain, id_a, id_b FROM diff_page_pairs ORDER BY url"
    ).fetchall()
    for url, domain, id_a, id_b in pairs:
        text_a, sha_a = conn.execute(_TEXT, [id_a]).fetchone()
        text_b, sha_b = conn.execute(_TEXT, [id_b]).fetchone()
        conn.execute(
            "INSERT INTO diff_out VALUES ('page_changed', ?, ?, ?, ?, ?)",
            [url, domain, sha_a, sha_b, text_diff(text_a, text_b, f"run {a}", f"run {b}")],
        )


def text_diff(
    before: str | None,
    after: str | None,
    from_label: str = "before",
    to_label: str = "after",
    max_lines: int = DIFF_MAX_LINES,
    max_bytes: int = DIFF_MAX_BYTES,
) -> str:
    """A unified diff of two extracted texts, cut at ``max_lines`` or ``max_bytes``."""
    if before is None and after is None:
        return "(no extracted text on either side)"
    lines = difflib.unified_diff(
        (before or "").splitlines(),
        (after or "").splitlines(),
        fromfile=from_label,
        tofile=to_label,
        lineterm="",
        n=2,
    )
    out: list[str] = []
    size = 0
    for count, line in enumerate(lines):
        size += len(line.encode()) + 1
        if count >= max_lines or size > max_bytes:
            rest = sum(1 for _ in lines) + 1
            out.append(f"... diff cut at {count} lines ({rest} more not shown)")
            break
        out.append(line)
    if not out:
        return "(the extracted text is the same; the content differs elsewhere)"
    return "\n".join(out)
