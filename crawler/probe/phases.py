"""Which phases of a run's probe ended, so a resumed probe does not do them again.

Each phase is recorded in ``probe_phases`` when it begins, with the highest rowid of every
probe table (its *marks*), and again when it ends, with what it hands on to later phases and a
snapshot of the engine's per-server counts and the run's notes.  A probe resumed after a kill
keeps the rows of every finished phase, undoes what the unfinished one wrote (rows of the run
above its marks), restores the counts and notes, and starts at the first unfinished phase: the
zone transfers, wordlist sweep or NSEC walk it finished are not asked again.  The big phases
also store checkpoints while they run (:mod:`.checkpoint`): their marks move with each one, so
a cut phase keeps what it had settled and goes on from there.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import sqlite_utils

from ..db import utcnow
from ..errors import check_stop
from .context import Context

log = logging.getLogger(__name__)

KEPT_TRANSFERS = {
    "axfr_attempts": "1",
    "dns_records": "source IN (SELECT 'axfr:' || zone || '@' || address FROM axfr_attempts "
                   "WHERE run_id = :run AND outcome = 'success')",
    "sightings": "method = 'axfr' AND source IN (SELECT address FROM axfr_attempts "
                 "WHERE run_id = :run AND outcome = 'success')",
}
"""Rows an undone phase keeps: every zone transfer it finished (an ``axfr_attempts`` row is
written after the transfer's records and sightings), so the phase done again reads the transfer
back instead of asking for it (:func:`.zones.transfer`)."""

PROBE_TABLES = (
    "leads", "nsec3_hashes", "dns_records", "sightings", "axfr_attempts", "nameservers", "zones",
)
"""Tables the probe writes rows of the run into (``domains`` is kept from ``sightings``)."""


class PhaseLog:
    """The ``probe_phases`` rows of one run, read once when the probe starts."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.done: dict[str, dict[str, Any]] = {
            phase: json.loads(state or "{}")
            for phase, state in ctx.db.execute(
                "SELECT phase, state FROM probe_phases WHERE run_id = ? "
                "AND finished_at IS NOT NULL ORDER BY finished_at, rowid", [ctx.run_id])
        }
        self.cut: dict[str, dict[str, Any]] = {
            phase: json.loads(state)
            for phase, state in ctx.db.execute(
                "SELECT phase, state FROM probe_phases WHERE run_id = ? "
                "AND finished_at IS NULL AND state IS NOT NULL", [ctx.run_id])
        }
        """The checkpoint of the phase a kill cut (:class:`.checkpoint.Checkpoint`)."""
        self.transfers: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        """Zone transfers the run finished before (kept when their phase was undone), by
        ``(zone, ns_name, address)``, each to be read back once instead of asked again."""
        for row in ctx.db.query(
                "SELECT zone, ns_name, address, outcome, error, records, soa_serial "
                "FROM axfr_attempts WHERE run_id = ? ORDER BY rowid", [ctx.run_id]):
            key = (row["zone"], row["ns_name"], row["address"])
            self.transfers.setdefault(key, []).append(row)
        self._restore()

    def finished(self, phase: str) -> dict[str, Any] | None:
        """What ``phase`` handed on if it ended in an earlier attempt of the run, else None."""
        state = self.done.get(phase)
        if state is not None:
            log.info("run %d: probe phase %s finished before, not done again",
                     self.ctx.run_id, phase)
        return state

    def begin(self, phase: str) -> None:
        """Note where the tables stood, so what this phase writes can be undone if cut."""
        check_stop()
        db = self.ctx.db
        if self.ctx.engine.answers is not None:
            self.ctx.engine.answers.begin(phase)
        with db.conn:  # a phase resumed from its checkpoint keeps it
            db.execute(
                "INSERT INTO probe_phases (run_id, phase, marks, started_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (run_id, phase) DO UPDATE SET marks = excluded.marks",
                [self.ctx.run_id, phase, json.dumps(current_marks(db)), utcnow()])

    def finish(self, phase: str, state: dict[str, Any] | None = None) -> None:
        """Record that ``phase`` ended, with ``state`` and the engine's counts so far."""
        engine = self.ctx.engine
        snapshot = {
            **(state or {}),
            "servers": [[list(server), s.queries, s.answered, s.timeouts, s.dead,
                         s.failures_in_a_row] for server, s in engine.servers.items()],
            "notes": list(self.ctx.notes),
        }
        self.done[phase] = snapshot
        with self.ctx.db.conn:
            if engine.answers is not None:
                engine.answers.finished(phase)
            self.ctx.db.execute(
                "UPDATE probe_phases SET state = ?, finished_at = ? WHERE run_id = ? "
                "AND phase = ?", [json.dumps(snapshot), utcnow(), self.ctx.run_id, phase])

    def _restore(self) -> None:
        """Counts, given-up servers and notes as the last finished phase, or the checkpoint of
        the cut one after it, left them."""
        if not self.done and not self.cut:
            return
        # the snapshots are cumulative, and the cut phase came after every finished one
        last = next(iter(self.cut.values())) if self.cut else list(self.done.values())[-1]
        engine = self.ctx.engine
        for server, queries, answered, timeouts, dead, failures in last.get("servers", []):
            s = engine.state((server[0], int(server[1])))
            s.queries, s.answered, s.timeouts = queries, answered, timeouts
            s.dead, s.failures_in_a_row = bool(dead), failures
        self.ctx.notes[:0] = last.get("notes", [])


def current_marks(db: sqlite_utils.Database) -> dict[str, int]:
    """The highest rowid of every probe table: what is above was written later."""
    return {t: db.execute(f"SELECT coalesce(max(rowid), 0) FROM {t}").fetchone()[0]
            for t in PROBE_TABLES}


def restart_probe(db: sqlite_utils.Database, run_id: int) -> None:
    """Before an interrupted probe of ``run_id`` is resumed: undo its unfinished phase, or
    everything it wrote when it kept no record of its phases."""
    if not undo_unfinished(db, run_id):
        clear_probe(db, run_id)


def clear_probe(db: sqlite_utils.Database, run_id: int) -> None:
    """Forget what a probe of ``run_id`` wrote, so it can start again."""
    with db.conn:
        for table in (*PROBE_TABLES, "probe_phases"):
            db.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
        forget_unseen_domains(db, run_id)


def undo_unfinished(db: sqlite_utils.Database, run_id: int) -> bool:
    """Remove what the run's unfinished probe phase wrote after its last checkpoint (all of it
    when it stored none); False if no phase was recorded (the probe was cut before its first
    phase began, or by a version that kept no record)."""
    started = db.execute(
        "SELECT phase, marks, state FROM probe_phases WHERE run_id = ? AND finished_at IS NULL",
        [run_id]).fetchall()
    if not db.execute("SELECT 1 FROM probe_phases WHERE run_id = ?", [run_id]).fetchone():
        return False
    with db.conn:
        for phase, marks_text, state in started:
            marks = json.loads(marks_text)
            for table in PROBE_TABLES:
                kept = KEPT_TRANSFERS.get(table, "0")
                db.execute(f"DELETE FROM {table} WHERE run_id = :run AND rowid > :mark "
                           f"AND NOT ({kept})", {"run": run_id, "mark": marks.get(table, 0)})
            if state is None:
                db.execute("DELETE FROM probe_phases WHERE run_id = ? AND phase = ?",
                           [run_id, phase])
                log.info("run %d: undid the unfinished probe phase %s", run_id, phase)
            else:
                log.info("run %d: kept the probe phase %s up to its checkpoint", run_id, phase)
        forget_unseen_domains(db, run_id)
    return True


def forget_unseen_domains(db: sqlite_utils.Database, run_id: int) -> None:
    """``domains`` as the run's remaining sightings say (after rows of the run were removed)."""
    unseen = "NOT EXISTS (SELECT 1 FROM sightings s WHERE s.run_id = ? AND s.domain = domains.name)"
    db.execute(
        "UPDATE domains SET last_seen_run = (SELECT max(run_id) FROM sightings "
        f"WHERE domain = domains.name) WHERE last_seen_run = ? AND {unseen}", [run_id, run_id])
    db.execute(f"DELETE FROM domains WHERE first_seen_run = ? AND {unseen}", [run_id, run_id])
