"""Unchanged pages are stored once: across runs, the text of a page lives in one ``pages`` row.

When the crawler fetches a URL whose content hash equals that of an earlier run's capture, it
writes a WARC ``revisit`` record (profile "identical payload digest") that refers to the
earlier ``response`` record, and a ``pages`` row with ``text`` NULL and ``revisit_of`` set to
the row that holds the text.  ``revisit_of`` always points at a row with ``revisit_of`` NULL,
so the text is one lookup away however many runs saw the page unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlite3

    import sqlite_utils

_COLUMNS = (
    "id",
    "run_id",
    "url",
    "sha256",
    "fetched_at",
    "warc_file",
    "warc_offset",
    "warc_record_id",
)


def find_previous_page(
    db: sqlite_utils.Database | sqlite3.Connection, url: str, sha256: str,
    before_run: int | None = None,
) -> dict[str, Any] | None:
    """The latest earlier original capture (not a revisit) of ``url`` with this ``sha256``.

    The dict has the row's ``id`` (for ``revisit_of``), its ``run_id``, ``fetched_at`` and
    WARC location (``warc_file``, ``warc_offset``, ``warc_record_id``: what the revisit record
    refers to).  ``before_run`` limits the search to earlier runs; None means any run.
    """
    sql = (
        f"SELECT {', '.join(_COLUMNS)} FROM pages WHERE url = ? AND sha256 = ? "
        "AND revisit_of IS NULL"
    )
    params: list[Any] = [url, sha256]
    if before_run is not None:
        sql += " AND run_id < ?"
        params.append(before_run)
    row = db.execute(sql + " ORDER BY run_id DESC, id DESC LIMIT 1", params).fetchone()
    return dict(zip(_COLUMNS, row, strict=True)) if row else None


def revisit_fields(previous: dict[str, Any]) -> dict[str, Any]:
    """The columns of a ``pages`` row for an unchanged page: no text, a pointer to it."""
    return {"text": None, "revisit_of": previous["id"]}


def page_text(db: sqlite_utils.Database, page_id: int) -> str | None:
    """The extracted text of a page row, following ``revisit_of`` for unchanged pages."""
    row = db.execute(
        "SELECT coalesce(p.text, o.text) FROM pages AS p "
        "LEFT JOIN pages AS o ON o.id = p.revisit_of WHERE p.id = ?",
        [page_id],
    ).fetchone()
    return row[0] if row else None
