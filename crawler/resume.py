"""``census run --resume``: an interrupted run continued where it stopped.

Each stage that ended keeps its outcome (``run_stages``); the probe keeps its finished phases
(``probe/phases.py``); the crawl keeps what it recorded and reads from the run's WARC what it
fetched but did not record (``crawl/resume.py``); classify and compare run as usual.  The run
ends with the status it would have had, and its message says it was resumed.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .census import STAGES, census_writer, finished_stages, take_stages
from .census_options import CensusOptions, stored_options
from .db import RunStatus, get_run
from .errors import CensusError
from .probe.options import ProgressCallback
from .probe.phases import restart_probe

log = logging.getLogger(__name__)


def resumable_run(db_path: str, zone: str | None = None) -> int | None:
    """The latest run (of ``zone``, if given) when it was interrupted, else None."""
    if not Path(db_path).is_file():
        return None
    from .db import reading

    with reading(db_path) as conn:
        if "runs" not in {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}:
            return None
        where, params = ("WHERE zone = ?", [zone]) if zone else ("", [])
        row = conn.execute(
            f"SELECT id, status FROM runs {where} ORDER BY id DESC LIMIT 1", params
        ).fetchone()
    # a run left ``running`` by a killed process is interrupted once the lock is taken
    if row and row[1] in (RunStatus.INTERRUPTED, RunStatus.RUNNING):
        return int(row[0])
    return None


def resume_census(
    db_path: str,
    run_id: int | None = None,
    progress: ProgressCallback | None = None,
    tsig: str | None = None,
) -> int:
    """Continue an interrupted run (default: the latest) where it stopped; return its id.

    Stages it finished keep their outcome; the probe, if it was cut short, keeps its
    finished phases and starts again at the phase it was in (``probe/phases.py``); the crawl
    keeps every page, failure and start URL it recorded and continues from the links not yet
    followed, so nothing recorded is fetched twice; classify and compare run as usual.  The
    run ends with the status it would have had, and its message says it was resumed.
    """
    with census_writer(db_path, create=False) as db:
        run = get_run(db, run_id)
        if run["status"] != RunStatus.INTERRUPTED:
            raise CensusError(
                f"run {run['id']} is {run['status']}, not interrupted: nothing to resume"
            )
        options = stored_options(run, db_path=db_path, tsig=tsig)
        if not options.stages:  # a run from before stages were recorded
            options = CensusOptions(**{**asdict(options), "stages": STAGES})
        done = finished_stages(db, run["id"])
        if "probe" not in done and "probe" in options.stages:
            check_tsig(run, tsig)
        stopped = run["stage"] or "probe"
        if "probe" not in done:
            restart_probe(db, run["id"])
        if "crawl" not in done:
            options = CensusOptions(
                **{**asdict(options), "crawl": {**options.crawl, "resume": True}}
            )
        note = f"resumed after an interruption during {stopped}"
        log.info("run %d: %s", run["id"], note)
        take_stages(db, run["id"], options, progress, done, note)
        return int(run["id"])


def check_tsig(run: dict[str, Any], tsig: str | None) -> None:
    """A probe resumed with the key its run transferred with, or a one-line refusal.

    A TSIG secret is never recorded (``runs.options`` keeps NAME:ALG): a key given by
    ``--tsig`` must be given again; a key from the profile is read from it again.
    """
    recorded_key = run["options"].get("tsig")
    if tsig:
        from .probe.tsig import TsigKey

        TsigKey.parse(tsig)
        if recorded_key and tsig.rpartition(":")[0] != recorded_key:
            raise CensusError(
                f"run {run['id']} transferred with the TSIG key {recorded_key}, not "
                f"{tsig.rpartition(':')[0]}: give that key again with --tsig"
            )
    elif recorded_key:
        raise CensusError(
            f"run {run['id']} was interrupted during its probe and transfers with the TSIG key"
            f" {recorded_key}, whose secret is not stored: resume it with "
            f"census run --resume --tsig {recorded_key}:SECRET"
        )
