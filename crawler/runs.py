"""``census runs``: every run of the census with its status and what it found.

Counts come from one grouped query per table over indexed ``run_id`` columns, so listing the
runs of a census of a million domains does not read their rows one by one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import sqlite_utils

from .errors import RunNotFound

_COUNTS = {
    "domains": "SELECT run_id, count(DISTINCT domain) FROM sightings "
    "WHERE domain IS NOT NULL GROUP BY run_id",
    "live_sites": "SELECT run_id, count(DISTINCT domain) FROM sites WHERE alive GROUP BY run_id",
    "pages": "SELECT run_id, count(*) FROM pages GROUP BY run_id",
    "changes": "SELECT to_run, count(*) FROM changes GROUP BY to_run",
}


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
    counts = {name: dict(db.execute(sql).fetchall()) for name, sql in _COUNTS.items()}
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
