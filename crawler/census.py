"""A census run: probe -> crawl -> classify -> compare, with a truthful status at every exit.

``run_census()`` is what ``census run`` calls; each stage can also run on its own for an
existing run (``census crawl --run 3``).  The writer lock is held for the whole run, so a
second run on the same database stops at once.  Ctrl-C marks the run ``interrupted``; an
exception marks it ``failed`` with the message; earlier runs are never touched.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import sqlite_utils

from .census_options import CensusOptions, recorded, stored_options
from .db import (
    RunStatus,
    finish_run,
    get_run,
    mark_abandoned_runs,
    open_census,
    record_stage,
    set_options,
    set_stage,
    start_run,
    writer_lock,
)
from .errors import RunNotFound, check_stop
from .probe.options import ProgressCallback
from .profiles import load_profile
from .stages import STAGE_FUNCTIONS, StageResult

log = logging.getLogger(__name__)

STAGES = ("probe", "crawl", "classify", "compare")

# Worst first: a run's status is the worst of its stages' statuses (an interrupted run that
# has a stage rerun stays interrupted: what it did not finish is still missing).
_SEVERITY = [RunStatus.FAILED, RunStatus.INTERRUPTED, RunStatus.PARTIAL, RunStatus.COMPLETE]


@contextmanager
def census_writer(db_path: str | Path, create: bool = True) -> Iterator[sqlite_utils.Database]:
    """The census at ``db_path``, locked for writing, with abandoned runs marked.

    ``create=False`` is for commands that only make sense on an existing census.
    """
    if not create and not Path(db_path).is_file():
        raise RunNotFound(f"no census database at {db_path}")
    with writer_lock(db_path):
        db = open_census(db_path)
        abandoned = mark_abandoned_runs(db)
        if abandoned:
            log.warning("marked %d abandoned run(s) as interrupted", abandoned)
        try:
            yield db
        finally:
            db.close()


@contextmanager
def stage(db: sqlite_utils.Database, run_id: int, name: str) -> Iterator[None]:
    """Run one stage of ``run_id``: Ctrl-C -> interrupted, an exception -> failed."""
    set_stage(db, run_id, name)
    log.info("run %d: %s", run_id, name)
    try:
        yield
        check_stop()  # a stop whose KeyboardInterrupt a library swallowed
    except KeyboardInterrupt:
        finish_run(db, run_id, RunStatus.INTERRUPTED, f"interrupted during {name}")
        raise
    except BaseException as exc:
        finish_run(db, run_id, RunStatus.FAILED, f"{name} failed: {exc}")
        raise


def _worst(statuses: Sequence[RunStatus]) -> RunStatus:
    """A run is as good as its worst stage; a run with no stage is complete."""
    return min(statuses, key=_SEVERITY.index, default=RunStatus.COMPLETE)


def census_stages(screenshots: bool = False) -> list[str]:
    """The stages of a new run; screenshots, when asked, right after the crawl."""
    stages = list(STAGES)
    if screenshots:
        stages.insert(stages.index("crawl") + 1, "screenshots")
    return stages


def run_census(
    options: CensusOptions,
    stages: Sequence[str] = STAGES,
    progress: ProgressCallback | None = None,
) -> int:
    """Start a new run of ``options.zone`` and take it through ``stages``; return its id."""
    profile = load_profile(options.zone, options.profile_path)
    # the run's files are found from what it recorded, wherever the database is opened from
    options = CensusOptions(**{
        **asdict(options), "zone": profile.zone, "stages": tuple(stages),
        "out_dir": str(Path(options.out_dir).resolve()),
    })
    if options.tsig:
        from .probe.tsig import TsigKey

        TsigKey.parse(options.tsig)  # a bad key stops here, before a run is started
    with census_writer(options.db_path) as db:
        run_id = start_run(db, profile.zone, recorded(options))
        take_stages(db, run_id, options, progress, {})
        return run_id


def take_stages(
    db: sqlite_utils.Database,
    run_id: int,
    options: CensusOptions,
    progress: ProgressCallback | None,
    done: dict[str, StageResult],
    note: str | None = None,
) -> None:
    """Take the run through its stages, those in ``done`` (a resumed run) as they ended."""
    results = []
    for name in options.stages:
        fn = STAGE_FUNCTIONS.get(name)
        if fn is None:
            continue
        if name in done:
            results.append(done[name])
        else:
            with stage(db, run_id, name):
                results.append(fn(db, run_id, options, progress))
            record_stage(db, run_id, name, results[-1].status, results[-1].message)
        if results[-1].status == RunStatus.FAILED:
            break
    messages = [r.message for r in results if r.message] + ([note] if note else [])
    finish_run(db, run_id, _worst([r.status for r in results]), "; ".join(messages) or None)


def finished_stages(db: sqlite_utils.Database, run_id: int) -> dict[str, StageResult]:
    """The stages of a run that ended, with their outcome."""
    return {
        name: StageResult(RunStatus(status), message or "")
        for name, status, message in db.execute(
            "SELECT stage, status, message FROM run_stages WHERE run_id = ?", [run_id]
        )
    }


def run_stage(
    name: str,
    db_path: str,
    run_id: int | None = None,
    overrides: dict[str, Any] | None = None,
    progress: ProgressCallback | None = None,
) -> int:
    """Run one stage again for an existing run (default: the latest); return the run id.

    The run's status is then the worst of its stages' outcomes when every stage it was
    asked for has ended (``census crawl --run N`` of a run whose crawl failed can make it
    complete), else the worst of that and its status before (an interrupted run stays
    interrupted: use ``census run --resume``).
    """
    with census_writer(db_path, create=False) as db:
        run = get_run(db, run_id)
        overrides = dict(overrides or {})
        options = stored_options(run, **overrides, db_path=db_path)
        if overrides:
            set_options(db, run["id"], recorded(options))  # e.g. --ignore-robots on a rerun
        fn = STAGE_FUNCTIONS[name]
        with stage(db, run["id"], name):
            result = fn(db, run["id"], options, progress)
        record_stage(db, run["id"], name, result.status, result.message)
        done = finished_stages(db, run["id"])
        asked = [s for s in (options.stages or STAGES) if s in STAGE_FUNCTIONS]
        if all(s in done for s in asked):
            status = _worst([done[s].status for s in asked])
        else:
            status = _worst([RunStatus(run["status"]), result.status])
        rerun = f"{name} rerun: {result.message}" if result.message else f"{name} rerun"
        message = f"{run['message']}; {rerun}" if run["message"] else rerun
        finish_run(db, run["id"], status, message)
        return int(run["id"])
