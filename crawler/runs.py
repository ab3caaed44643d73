"""``census runs``: every run of the census with its status and what it found.

Counts come from the ``run_counts`` view, the one query behind every count a run prints,
the report shows and Datasette lists.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import RunNotFound

if TYPE_CHECKING:  # the crawl process imports this module, and needs no sqlite_utils
    import sqlite_utils

_COUNTS = ("domains", "live_sites", "pages", "changes")
"""Columns of the ``run_counts`` view (one query, shared with the report and Datasette)."""


def files_root(db_path: str | Path, options: dict[str, Any]) -> Path:
    """Where a run wrote its files: the ``out_dir`` it recorded (absolute since runs record
    it so), else relative to the database's folder, else that folder."""
    out = options.get("out_dir")
    if out:
        path = Path(out)
        if path.is_absolute():
            return path
        if (Path(db_path).parent / path).is_dir():
            return Path(db_path).parent / path
        if path.is_dir():
            return path
    return Path(db_path).parent


def latest_files_root(db_path: str | Path) -> Path:
    """Where the latest run that wrote files put them (``files_root`` of its options)."""
    from .db import reading

    try:
        with reading(db_path) as conn:
            row = conn.execute("SELECT options FROM runs ORDER BY id DESC LIMIT 1").fetchone()
    except Exception:  # no census yet, or not one: the database's folder
        row = None
    return files_root(db_path, json.loads(row[0] or "{}") if row else {})


@dataclass(frozen=True)
class RunSummary:
    id: int
    zone: str
    started_at: str | None
    finished_at: str | None
    status: str
    domains: int
    live_sites: int
    pages: int
    changes: int
    """Changes recorded with this run as the newer side of a diff."""
    message: str | None


def list_runs(db: sqlite_utils.Database, zone: str | None = None) -> list[RunSummary]:
    """All runs (of ``zone`` if given), oldest first, with their counts."""
    return _summaries(db, *(("zone = ?", [zone]) if zone else (None, [])))


def run_summary(db: sqlite_utils.Database, run_id: int) -> RunSummary:
    """One run with its counts, as ``census runs`` shows it."""
    found = _summaries(db, "id = ?", [run_id])
    if not found:
        raise RunNotFound(f"no run {run_id}")
    return found[0]


def summary_line(run: RunSummary, db_path: str) -> str:
    """What a command prints when a run ends."""
    return f"run {run.id} of .{run.zone}: {run.status}, {run.domains} domains -> {db_path}"


def _summaries(db: sqlite_utils.Database, where: str | None, params: list[Any]
               ) -> list[RunSummary]:
    counts: dict[str, dict[int, int]] = {name: {} for name in _COUNTS}
    for row in db.execute(f"SELECT run_id, {', '.join(_COUNTS)} FROM run_counts"):
        for name, value in zip(_COUNTS, row[1:], strict=True):
            counts[name][row[0]] = value
    return [
        RunSummary(
            id=run["id"],
            zone=run["zone"],
            started_at=run["started_at"],
            finished_at=run["finished_at"],
            status=run["status"],
            message=run["message"],
            **{name: counts[name].get(run["id"], 0) for name in _COUNTS},
        )
        for run in db["runs"].rows_where(where, params, order_by="id")
    ]


def runs_table(runs: list[RunSummary]) -> str:
    """A plain text table, one line per run."""
    header = ("id", "zone", "started", "finished", "status", "domains", "live", "pages", "changes")
    rows = [header] + [
        (
            str(r.id),
            r.zone,
            r.started_at or "",
            r.finished_at or "",
            r.status,
            str(r.domains),
            str(r.live_sites),
            str(r.pages),
            str(r.changes),
        )
        for r in runs
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    numeric = set(range(5, len(header)))
    return "\n".join(
        "  ".join(
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ).rstrip()
        for row in rows
    )


def runs_json(runs: list[RunSummary]) -> str:
    """A JSON array of runs; keys are the :class:`RunSummary` fields."""
    return json.dumps([asdict(r) for r in runs], indent=2)
