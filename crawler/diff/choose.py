"""Which two runs a diff compares, which it refuses, and the notes that say why.

A run is *finished* when it is ``complete`` or ``partial``: a census of ``.kp`` is partial
whenever one of its nameservers stays silent, which is most of the time, and is still the
census as it stands (the report warns that what it missed shows as removed).  With no run
given, the last two finished runs of the zone of the latest finished run.  One run given:
it and the latest finished run of its zone before it.  ``failed`` and ``interrupted`` runs
are never a silent baseline: they are refused unless ``force`` is set (then they count as
finished too), and a ``running`` run always is.  Runs of different zones are refused, and so
is a newer run given first.  The report names the runs it skipped.
"""

from __future__ import annotations

from typing import Any

import sqlite_utils

from ..db import RunStatus, get_run
from ..errors import IncomparableRuns

Run = dict[str, Any]


def choose_runs(
    db: sqlite_utils.Database,
    run_a: int | None = None,
    run_b: int | None = None,
    *,
    zone: str | None = None,
    force: bool = False,
) -> tuple[Run, Run, list[str]]:
    """The (older, newer) runs to compare and notes about the choice; see the module doc."""
    statuses = _FORCED if force else _FINISHED
    if run_b is None and run_a is not None:
        run_a, run_b = None, run_a  # ``census diff RUN``: RUN and the run before it
    if run_b is None:
        if zone is None:
            latest = list(
                db["runs"].rows_where(
                    f"status IN ({', '.join('?' * len(statuses))})",
                    list(statuses),
                    order_by="id desc",
                    limit=1,
                )
            )
            if not latest:
                raise IncomparableRuns("the census has no finished run to compare")
            zone = latest[0]["zone"]
        finished = _finished_runs(db, zone, statuses)
        if len(finished) < 2:
            raise IncomparableRuns(
                f"need two finished runs of .{zone} to compare, found {len(finished)}"
                + _skipped_text(db, zone, 0, None)
                + _other_zones(db, zone)
            )
        run_a, run_b = finished[-2]["id"], finished[-1]["id"]
    elif run_a is None:
        b = get_run(db, run_b)
        run_a = _baseline(db, b["zone"], run_b, statuses)
        if run_a is None:
            raise IncomparableRuns(
                f"no finished run of .{b['zone']} before run {run_b} to compare with"
                + _skipped_text(db, b["zone"], 0, run_b)
            )
    a, b = get_run(db, run_a), get_run(db, run_b)
    if a["id"] == b["id"]:
        raise IncomparableRuns(f"run {a['id']} compared with itself has no changes to show")
    if a["id"] > b["id"]:
        raise IncomparableRuns(
            f"run {a['id']} is newer than run {b['id']}: give the older run first"
        )
    if a["zone"] != b["zone"]:
        raise IncomparableRuns(
            f"run {a['id']} is a census of .{a['zone']} and run {b['id']} of .{b['zone']}: "
            "runs of different zones cannot be compared"
        )
    notes = [note for note in (_check(a, force), _check(b, force)) if note]
    low, high = sorted((a["id"], b["id"]))
    notes += _baseline_notes(db, a["zone"], low, high)
    return a, b, notes


def choose_baseline(db: sqlite_utils.Database, run_id: int) -> tuple[Run, Run, list[str]] | None:
    """(baseline, ``run_id``, notes) for the compare stage of a run, which may still be running.

    The baseline is the latest finished run of the same zone before it; None when there is
    none (the first census of a zone).  Nothing is refused: the run compares itself.
    """
    run = get_run(db, run_id)
    baseline = _baseline(db, run["zone"], run_id, _FINISHED)
    if baseline is None:
        return None
    a = get_run(db, baseline)
    return a, run, _baseline_notes(db, run["zone"], a["id"], run_id)


_FINISHED = (RunStatus.COMPLETE, RunStatus.PARTIAL)
_FORCED = (*_FINISHED, RunStatus.FAILED, RunStatus.INTERRUPTED)


def _finished_runs(
    db: sqlite_utils.Database, zone: str, statuses: tuple[str, ...] = _FINISHED
) -> list[Run]:
    return list(
        db["runs"].rows_where(
            f"zone = ? AND status IN ({', '.join('?' * len(statuses))})",
            [zone, *statuses],
            order_by="id",
        )
    )


def _baseline(
    db: sqlite_utils.Database, zone: str, before: int, statuses: tuple[str, ...]
) -> int | None:
    """The id of the latest finished run of ``zone`` before run ``before``, if any."""
    older = [r for r in _finished_runs(db, zone, statuses) if r["id"] < before]
    return older[-1]["id"] if older else None


def _other_zones(db: sqlite_utils.Database, zone: str) -> str:
    """A hint when the census holds other zones than the one chosen."""
    others = [z for (z,) in db.execute("SELECT DISTINCT zone FROM runs WHERE zone != ?", [zone])]
    return f" (the census also holds {', '.join(others)}: use --zone)" if others else ""


def _check(run: Run, force: bool) -> str | None:
    """Refuse a run that cannot be compared; return a note for one that can, with caveats."""
    status = run["status"]
    if status == RunStatus.RUNNING:
        raise IncomparableRuns(f"run {run['id']} is still running; wait for it to finish")
    if status in (RunStatus.FAILED, RunStatus.INTERRUPTED) and not force:
        raise IncomparableRuns(
            f"run {run['id']} is {status}: what it did not reach would show as removed; "
            "compare it anyway with --force"
        )
    if status != RunStatus.COMPLETE:
        return f"run {run['id']} is {status}: names and pages it missed show as removed or added"
    return None


def _skipped(db: sqlite_utils.Database, zone: str, low: int, high: int | None) -> str:
    """The runs of ``zone`` strictly between ``low`` and ``high`` that are not complete."""
    rows = db.execute(
        "SELECT id, status FROM runs WHERE zone = ? AND id > ? AND id < ? "
        "AND status NOT IN (?, ?) ORDER BY id",
        [zone, low, high if high is not None else 2**62, *_FINISHED],
    ).fetchall()
    return ", ".join(f"run {rid} ({status})" for rid, status in rows)


def _skipped_text(db: sqlite_utils.Database, zone: str, low: int, high: int | None) -> str:
    """The end of a refusal: which runs could not serve, so the user knows why."""
    skipped = _skipped(db, zone, low, high)
    return f"; not comparable: {skipped}" if skipped else ""


def _baseline_notes(db: sqlite_utils.Database, zone: str, low: int, high: int) -> list[str]:
    """The note naming runs between the two that were passed over as baselines, if any."""
    skipped = _skipped(db, zone, low, high)
    return [f"not used as baselines: {skipped}"] if skipped else []
