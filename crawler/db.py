"""Open the census database and keep each run's lifecycle truthful.

One writer at a time: a run holds an exclusive lock on ``<db>.lock`` for as long as it writes,
so a second run on the same file stops at once with a clear message instead of interleaving
rows.  A run killed without a chance to say so is left ``running``; the next writer that takes
the lock marks it ``interrupted``, because nobody else can be writing it.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__, search
from .errors import DatabaseLocked, RunNotFound

if TYPE_CHECKING:  # imported where used: the crawl's writer and workers connect without it
    import sqlite_utils


class RunStatus(StrEnum):
    RUNNING = "running"
    COMPLETE = "complete"
    PARTIAL = "partial"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class Method(StrEnum):
    """How a name was found: the ``sightings.method`` values."""

    AXFR = "axfr"
    SEED = "seed"
    WORDLIST = "wordlist"
    PTR = "ptr"
    LINK = "link"
    NSEC = "nsec"
    DELEGATION = "delegation"


def utcnow() -> str:
    """Timestamps are UTC ISO 8601 with seconds, so they sort as text."""
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


BUSY_TIMEOUT = 30.0  # seconds a reader or the crawl's writer waits for the other's commit


def connect(
    path: str | Path, *, readonly: bool = False, check_same_thread: bool = True
) -> sqlite3.Connection:
    """The one way to open a connection to the census file.

    Foreign keys and a busy timeout on every connection; read-only (by URI) where the caller
    only reads, so a report or a Datasette helper can never change a census.  The schema is
    the business of ``open_census``, which every run calls first.
    """
    path = Path(path)
    if readonly:
        if not path.is_file():
            raise RunNotFound(f"no census database at {path}")
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                               timeout=BUSY_TIMEOUT, check_same_thread=check_same_thread)
    else:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT, check_same_thread=check_same_thread)
    conn.execute("PRAGMA foreign_keys = ON")
    if not readonly:
        search.attach(conn)  # the pages a writer inserts get their search form
    return conn


def reading(path: str | Path) -> closing[sqlite3.Connection]:
    """A read-only connection closed at the end of a ``with`` block."""
    return closing(connect(path, readonly=True))


def open_census(path: str | Path, *, create: bool = True) -> sqlite_utils.Database:
    """Open (creating and migrating as needed) the census at ``path``."""
    path = Path(path)
    if not create and not path.exists():
        raise RunNotFound(f"no census database at {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    import sqlite_utils

    from . import migrations

    db = sqlite_utils.Database(connect(path))
    db.execute("PRAGMA journal_mode = WAL")
    migrations.apply(db)
    search.attach(db.conn)  # a file that had no pages_fts of this kind before migrating
    return db


@contextmanager
def writer_lock(path: str | Path) -> Iterator[None]:
    """Hold the one-writer lock of the census at ``path``."""
    lock_path = Path(f"{path}.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            raise DatabaseLocked(
                f"{path} is being written by another census run (pid {holder}); "
                "wait for it to finish or use another --db"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


def mark_abandoned_runs(db: sqlite_utils.Database) -> int:
    """Mark runs left ``running`` by a dead process as ``interrupted``; call under the lock."""
    cursor = db.execute(
        "UPDATE runs SET status = ?, finished_at = COALESCE(finished_at, ?), "
        "message = COALESCE(message, 'the process ended before the run finished') "
        "WHERE status = ?",
        [RunStatus.INTERRUPTED, utcnow(), RunStatus.RUNNING],
    )
    db.conn.commit()
    return cursor.rowcount


def start_run(db: sqlite_utils.Database, zone: str, options: dict[str, Any]) -> int:
    """Create the ``runs`` row of a new run and return its id."""
    with db.conn:
        table = db["runs"].insert(
            {
                "zone": zone,
                "started_at": utcnow(),
                "finished_at": None,
                "status": RunStatus.RUNNING,
                "stage": "probe",
                "message": None,
                "tool_version": __version__,
                "options": json.dumps(options, sort_keys=True, default=str),
            }
        )
    return int(table.last_pk)


def set_options(db: sqlite_utils.Database, run_id: int, options: dict[str, Any]) -> None:
    """What the run was asked to do, after a stage was rerun with other options."""
    with db.conn:
        db["runs"].update(run_id, {"options": json.dumps(options, sort_keys=True, default=str)})


def set_stage(db: sqlite_utils.Database, run_id: int, stage: str) -> None:
    with db.conn:
        db["runs"].update(run_id, {"stage": stage, "status": RunStatus.RUNNING})


def finish_run(
    db: sqlite_utils.Database, run_id: int, status: RunStatus, message: str | None = None
) -> None:
    with db.conn:
        db["runs"].update(run_id, {"status": status, "finished_at": utcnow(), "message": message})


def record_stage(
    db: sqlite_utils.Database, run_id: int, stage: str, status: str, message: str | None
) -> None:
    """A stage of the run ended with ``status``: kept so a resumed run need not redo it."""
    with db.conn:
        db.execute(
            "INSERT OR REPLACE INTO run_stages (run_id, stage, status, message, finished_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [run_id, stage, str(status), message, utcnow()],
        )


def run_counts(db: sqlite_utils.Database, run_id: int) -> dict[str, Any]:
    """Every count of a run, from the ``run_counts`` view that Datasette shows too."""
    cursor = db.execute("SELECT * FROM run_counts WHERE run_id = ?", [run_id])
    row = cursor.fetchone()
    if row is None:
        raise RunNotFound(f"no run {run_id}")
    return dict(zip([c[0] for c in cursor.description], row, strict=True))


def get_run(db: sqlite_utils.Database, run_id: int | None = None) -> dict[str, Any]:
    """The run ``run_id``, or the latest run when it is None."""
    if run_id is None:
        rows = list(db["runs"].rows_where(order_by="id desc", limit=1))
    else:
        rows = list(db["runs"].rows_where("id = ?", [run_id]))
    if not rows:
        raise RunNotFound(f"no run {run_id}" if run_id is not None else "the census has no runs")
    run = rows[0]
    run["options"] = json.loads(run["options"] or "{}")
    return run


def see_name(
    db: sqlite_utils.Database,
    run_id: int,
    name: str,
    domain: str | None,
    suffix: str | None,
    method: str,
    source: str,
) -> bool:
    """Record that ``name`` was seen by ``method``; return True if its domain is new this run.

    ``domain`` is the registrable domain the name belongs to (None for names that are not under
    a registrable domain, such as the zone apex or a suffix).  ``domains`` keeps the first and
    last run that saw it, across runs.
    """
    db.execute(
        "INSERT OR IGNORE INTO sightings (run_id, name, domain, method, source) "
        "VALUES (?, ?, ?, ?, ?)",
        [run_id, name, domain, method, source],
    )
    if domain is None:
        return False
    cursor = db.execute(
        "INSERT INTO domains (name, suffix, first_seen_run, last_seen_run) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(name) DO UPDATE SET last_seen_run = excluded.last_seen_run "
        "WHERE last_seen_run IS NOT excluded.last_seen_run",
        [domain, suffix, run_id, run_id],
    )
    return cursor.rowcount > 0


def see_names(
    db: sqlite_utils.Database,
    run_id: int,
    sightings: list[tuple[str, str | None, str | None, str, str]],
) -> int:
    """``see_name`` for a batch of ``(name, domain, suffix, method, source)``, in two statements.

    A zone transfer of a million names is seen in seconds, not a statement per name.  Returns
    how many domains the batch made new to the run.
    """
    seen_before = _seen_in_run(db, run_id)
    db.conn.executemany(
        "INSERT OR IGNORE INTO sightings (run_id, name, domain, method, source) "
        "VALUES (?, ?, ?, ?, ?)",
        [(run_id, name, domain, method, source) for name, domain, _, method, source in sightings],
    )
    db.conn.executemany(
        "INSERT INTO domains (name, suffix, first_seen_run, last_seen_run) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(name) DO UPDATE SET last_seen_run = excluded.last_seen_run "
        "WHERE last_seen_run IS NOT excluded.last_seen_run",
        [
            (domain, suffix, run_id, run_id)
            for domain, suffix in dict.fromkeys((d, s) for _, d, s, _, _ in sightings if d)
        ],
    )
    return _seen_in_run(db, run_id) - seen_before


def _seen_in_run(db: sqlite_utils.Database, run_id: int) -> int:
    return db.execute("SELECT count(*) FROM domains WHERE last_seen_run = ?", [run_id]).fetchone()[
        0
    ]


def run_domains(db: sqlite_utils.Database | sqlite3.Connection, run_id: int) -> list[str]:
    """Registrable domains seen in ``run_id``, sorted."""
    return [
        row[0]
        for row in db.execute(
            "SELECT DISTINCT domain FROM sightings WHERE run_id = ? AND domain IS NOT NULL "
            "ORDER BY domain",
            [run_id],
        )
    ]


def _domain_sql(zone: str, suffixes: set[str]) -> tuple[str, dict[str, Any]]:
    """A SELECT of ``(name, domain, suffix)`` over ``temp.census_stage`` in SQL alone.

    The same answer as ``Suffixes.split`` after ``normalize_name``, for names under ``zone``
    whose second-level suffixes (one label under the zone) are ``suffixes``; names that are
    not valid host names are left out.  Names one label under the zone (nearly all of a
    delegation-centric zone) take the cheap branch of the CASE; deeper ones find their last
    labels with ``rtrim(rel, <rel without dots>)``, everything up to the last dot.
    """
    labels = sorted(s.removesuffix("." + zone) for s in suffixes if s != zone)
    marks = ", ".join(f":s{i}" for i in range(len(labels))) or "NULL"
    rel = f"substr(name, 1, length(name) - {len(zone) + 1})"
    head = f"rtrim({rel}, replace({rel}, '.', ''))"
    last = f"substr({rel}, length({head}) + 1)"
    prev = f"substr({head}, 1, length({head}) - 1)"
    second = f"substr({prev}, length(rtrim({prev}, replace({prev}, '.', ''))) + 1)"
    deep_domain = f"""CASE WHEN {last} IN ({marks}) THEN
        CASE WHEN {second} = '' THEN NULL ELSE {second} || '.' || {last} || '.' || :zone END
      ELSE {last} || '.' || :zone END"""
    deep_suffix = f"""CASE WHEN {last} IN ({marks}) THEN
        CASE WHEN {second} = '' THEN NULL ELSE {last} || '.' || :zone END
      ELSE :zone END"""
    sql = f"""
    SELECT name,
      CASE WHEN name = :zone THEN NULL
           WHEN instr({rel}, '.') = 0 THEN CASE WHEN {rel} IN ({marks}) THEN NULL ELSE name END
           ELSE {deep_domain} END,
      CASE WHEN name = :zone THEN NULL
           WHEN instr({rel}, '.') = 0 THEN CASE WHEN {rel} IN ({marks}) THEN NULL ELSE :zone END
           ELSE {deep_suffix} END
    FROM temp.census_stage
    WHERE name = :zone OR (substr(name, -{len(zone) + 1}) = '.' || :zone
      AND length(name) <= 253 AND name NOT GLOB '*[^a-z0-9._-]*' AND instr('.' || name, '..') = 0
      AND instr('.' || name, '.-') = 0 AND instr(name || '.', '-.') = 0)
    """
    params: dict[str, Any] = {f"s{i}": label for i, label in enumerate(labels)}
    params["zone"] = zone
    return sql, params


def see_bulk(
    db: sqlite_utils.Database,
    run_id: int,
    zone: str,
    suffixes: set[str],
    names: Iterable[str],
    method: str,
    source: str,
    *,
    count: bool = True,
) -> int:
    """Sightings of many names of one source (a zone transfer), set-based.

    The names go to a staging table with one ``executemany``; their domains are worked out in
    SQL (:func:`_domain_sql`), and ``sightings`` and ``domains`` are each written by one
    ``INSERT ... SELECT``: a million names in seconds, with no Python per name beyond the
    staging insert.  Names outside the zone or not valid host names are not seen, as in
    ``see_name``.  Returns how many domains became seen in this run (0 unless ``count``: the
    count reads every domain of the run, too dear for each batch of a big transfer).
    """
    seen_before = _seen_in_run(db, run_id) if count else 0
    conn = _staging(db)
    conn.executemany(
        "INSERT INTO temp.census_stage (name) VALUES (?)",
        # a label of 64 or more is the one check SQL cannot do cheaply; short names pass
        ((n,) for n in names if len(n) < 64 or max(map(len, n.split("."))) < 64),
    )
    select, params = _domain_sql(zone, suffixes)
    conn.execute(f"INSERT INTO temp.census_staged {select}", params)
    _write_staged(db, run_id, method, source)
    return _seen_in_run(db, run_id) - seen_before if count else 0


def _staging(db: sqlite_utils.Database) -> sqlite3.Connection:
    """The connection, with the empty staging tables of set-based sightings: names
    (``census_stage``) and names with their domains worked out (``census_staged``)."""
    conn = db.conn
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS census_stage (name TEXT)")
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS census_staged "
                 "(name TEXT, domain TEXT, suffix TEXT)")
    conn.execute("DELETE FROM temp.census_stage")
    conn.execute("DELETE FROM temp.census_staged")
    return conn


def _write_staged(db: sqlite_utils.Database, run_id: int, method: str, source: str) -> None:
    """``sightings`` and ``domains`` from ``temp.census_staged`` (name, domain, suffix)."""
    conn = db.conn
    conn.execute(
        "INSERT OR IGNORE INTO sightings (run_id, name, domain, method, source) "
        "SELECT ?, name, domain, ?, ? FROM temp.census_staged",
        [run_id, method, source],
    )
    # no GROUP BY: a domain's suffix is the domain without its first label, so the rows of
    # one domain are alike and the upsert keeps the first (a sort of a million rows saved)
    conn.execute(
        "INSERT INTO domains (name, suffix, first_seen_run, last_seen_run) "
        "SELECT domain, suffix, ?, ? FROM temp.census_staged "
        "WHERE domain IS NOT NULL "
        "ON CONFLICT(name) DO UPDATE SET last_seen_run = excluded.last_seen_run "
        "WHERE last_seen_run IS NOT excluded.last_seen_run",
        [run_id, run_id],
    )
    conn.execute("DELETE FROM temp.census_stage")
    conn.execute("DELETE FROM temp.census_staged")


_SHALLOW = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
"""One label of a valid host name: what ``_domain_sql`` lets through, under 64 octets."""

Split = tuple[str, str | None, str | None]


def shallow_split(zone: str, suffixes: set[str], names: Iterable[str]) -> list[Split]:
    """``(name, domain, suffix)`` of names at most one label under ``zone``, as ``see_bulk``
    works them out in SQL, in plain Python: a forked AXFR parser does this on its own core.

    Deeper names must go through ``see_bulk``; invalid names are left out, as there.
    """
    labels = {s.removesuffix("." + zone) for s in suffixes if s != zone}
    tail, cut, match = "." + zone, -len(zone) - 1, _SHALLOW.fullmatch
    out: list[Split] = []
    for name in names:
        if name == zone:
            out.append((name, None, None))
        elif len(name) <= 253 and name.endswith(tail) and match(rel := name[:cut]):
            out.append((name, None, None) if rel in labels else (name, name, zone))
    return out


def see_split(
    db: sqlite_utils.Database, run_id: int, rows: list[Split], method: str, source: str
) -> None:
    """Sightings of names whose domains are already worked out (:func:`shallow_split`)."""
    conn = _staging(db)
    conn.executemany("INSERT INTO temp.census_staged VALUES (?, ?, ?)", rows)
    _write_staged(db, run_id, method, source)
