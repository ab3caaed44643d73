"""A census run: probe -> crawl -> classify -> compare, with a truthful status at every exit.

``run_census()`` is what ``census run`` calls; each stage can also run on its own for an
existing run (``census crawl --run 3``).  The writer lock is held for the whole run, so a
second run on the same database stops at once.  Ctrl-C marks the run ``interrupted``; an
exception marks it ``failed`` with the message; earlier runs are never touched.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import sqlite_utils

from .db import (
    Method,
    RunStatus,
    finish_run,
    get_run,
    mark_abandoned_runs,
    open_census,
    record_stage,
    run_counts,
    run_domains,
    set_options,
    set_stage,
    start_run,
    writer_lock,
)
from .errors import CensusError, RunNotFound
from .probe.options import ProbeOptions, ProgressCallback
from .profiles import Profile, load_profile, read_wordlist

log = logging.getLogger(__name__)

STAGES = ("probe", "crawl", "classify", "compare")

# Worst first: a run's status is the worst of its stages' statuses (an interrupted run that
# has a stage rerun stays interrupted: what it did not finish is still missing).
_SEVERITY = [RunStatus.FAILED, RunStatus.INTERRUPTED, RunStatus.PARTIAL, RunStatus.COMPLETE]


@dataclass(frozen=True)
class CensusOptions:
    """Everything a run was asked to do; stored as JSON in ``runs.options``."""

    zone: str | None = None
    db_path: str = "output/census.db"
    out_dir: str = "output"
    profile_path: str | None = None
    resolvers: tuple[str, ...] = ()
    ns_port: int = 53
    seeds: bool = True
    wordlist_path: str | None = None
    wordlist: bool = True
    ip_ranges: tuple[str, ...] = ()
    allow_nets: tuple[str, ...] = ()
    timeout: float | None = None
    qps: float | None = None
    tsig: str | None = None
    """``NAME:ALG:SECRET`` for the zone's transfers; runs.options keeps only NAME:ALG."""
    crawl: dict[str, Any] = field(default_factory=dict)
    """Options of the crawl stage (max_pages, http_port, ignore_robots, ...)."""
    stages: tuple[str, ...] = ()
    """The stages the run was asked for (a resumed run does the rest of them)."""


@dataclass
class StageResult:
    status: RunStatus
    message: str = ""


def parse_resolver(text: str) -> tuple[str, int]:
    """``'127.0.0.1:5300'`` -> ``('127.0.0.1', 5300)``; ``'[::1]:53'`` and bare hosts work."""
    import ipaddress

    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":"):
            port = _port(rest[1:], text)
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = _port(port_text, text)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise CensusError(f"invalid resolver {text!r}: expected an IP address[:port]") from None
    return host, port


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise CensusError(f"invalid resolver {whole!r}: bad port {text!r}")
    return int(text)


def probe_options(options: CensusOptions, profile: Profile) -> ProbeOptions:
    if options.wordlist:
        wordlist: tuple[str, ...] = tuple(read_wordlist(profile, options.wordlist_path))
    else:
        wordlist = ()
    return ProbeOptions(
        resolvers=tuple(parse_resolver(r) for r in options.resolvers),
        ns_port=options.ns_port,
        seeds=options.seeds,
        wordlist=wordlist,
        ip_ranges=tuple(options.ip_ranges) or None,
        timeout=options.timeout,
        queries_per_second=options.qps,
        allow_net=tuple(options.allow_nets),
        tsig=options.tsig,
    )


def recorded(options: CensusOptions) -> dict[str, Any]:
    """``options`` as ``runs.options`` keeps them: a TSIG secret is not written down."""
    data = asdict(options)
    if options.tsig:
        data["tsig"] = options.tsig.rpartition(":")[0]
    if data["crawl"].get("redis"):  # nor a Redis password (census crawl --redis)
        parts = urlsplit(data["crawl"]["redis"])
        if parts.password:
            data["crawl"] = {**data["crawl"], "redis": parts._replace(
                netloc=f"{parts.username or ''}:***@{parts.hostname}"
                       + (f":{parts.port}" if parts.port else "")).geturl()}
    return data


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
    except KeyboardInterrupt:
        finish_run(db, run_id, RunStatus.INTERRUPTED, f"interrupted during {name}")
        raise
    except BaseException as exc:
        finish_run(db, run_id, RunStatus.FAILED, f"{name} failed: {exc}")
        raise


def _worst(statuses: Sequence[RunStatus]) -> RunStatus:
    """A run is as good as its worst stage; a run with no stage is complete."""
    return min(statuses, key=_SEVERITY.index, default=RunStatus.COMPLETE)


StageFn = Callable[
    [sqlite_utils.Database, int, CensusOptions, ProgressCallback | None], StageResult
]


def _probe_stage(
    db: sqlite_utils.Database,
    run_id: int,
    options: CensusOptions,
    progress: ProgressCallback | None,
) -> StageResult:
    from .probe import probe_run

    profile = load_profile(options.zone, options.profile_path)
    result = probe_run(db, run_id, profile, probe_options(options, profile), progress)
    return StageResult(RunStatus(result.status), result.message)


def linked_names(
    db: sqlite_utils.Database, run_id: int, profile: Profile
) -> list[tuple[str, str, str]]:
    """Hosts under the zone that pages link to, of domains the run does not know yet.

    Returns ``(host, 'link', first page URL linking to it)``.
    """
    suffixes = profile.suffix_set
    known = set(run_domains(db, run_id))
    found = db.execute(
        "SELECT l.to_host, min(p.url) FROM links l JOIN pages p ON p.id = l.page_id "
        "WHERE l.run_id = ? AND (l.to_host = ? OR l.to_host LIKE ?) GROUP BY l.to_host",
        [run_id, profile.zone, f"%.{profile.zone}"],
    )
    return [
        (host, Method.LINK, url)
        for host, url in found
        if (domain := suffixes.domain_of(host)) and domain not in known
    ]


def _crawl_stage(
    db: sqlite_utils.Database,
    run_id: int,
    options: CensusOptions,
    progress: ProgressCallback | None,
) -> StageResult:
    """Crawl every site; then probe the new names that links revealed and crawl those too."""
    from .crawl import CrawlResult, crawl_run
    from .probe import probe_names

    def crawl(extra: dict[str, Any]) -> CrawlResult:
        """One pass of the crawl; Scrapy's ``shutdown`` means it was asked to stop."""
        run = crawl_run
        if options.crawl.get("redis"):  # census crawl --redis: census worker processes crawl
            from .crawl.distributed import coordinate

            run = functools.partial(coordinate, redis_url=options.crawl["redis"])
        result = run(
            options.db_path,
            run_id,
            options.out_dir,
            list(options.allow_nets),
            {**options.crawl, **extra},
            progress=progress,
        )
        if result.finish_reason == "shutdown":
            raise KeyboardInterrupt
        return result

    crawl({"resume": True} if options.crawl.get("resume") else {})
    profile = load_profile(options.zone, options.profile_path)
    new = probe_names(
        db, run_id, profile, probe_options(options, profile), linked_names(db, run_id, profile)
    )
    if new:
        log.info("run %d: links revealed %d new domains: %s", run_id, len(new), ", ".join(new))
        crawl({"domains": new, "resume": False})
    pages = run_counts(db, run_id)["pages"]
    browsed = ""
    if options.crawl.get("browser", "auto") != "never" and pages:
        browsed = _browser_capture(options, run_id)
    message = crawl_message(db, run_id) + browsed  # the counts include the browser's pages
    if options.crawl.get("wacz", True) and pages:
        message += "; " + _package_wacz(options, run_id)
    return StageResult(RunStatus.COMPLETE, message)


def crawl_message(db: sqlite_utils.Database, run_id: int) -> str:
    """What the crawl stage found, from the census (so a resumed crawl says the same)."""
    counts = run_counts(db, run_id)
    linked = [
        domain for (domain,) in db.execute(
            "SELECT domain FROM sightings WHERE run_id = ? AND domain IS NOT NULL "
            "GROUP BY domain HAVING min(method = 'link') = 1 ORDER BY domain", [run_id]
        )
    ]
    refused = db.execute(
        "SELECT count(*) FROM sites WHERE run_id = ? AND error LIKE '%not crawled:%'", [run_id]
    ).fetchone()[0]
    message = f"crawl: {counts['live_sites']} of {counts['sites']} sites alive, " \
              f"{counts['pages']} pages"
    if linked:
        message += f"; links revealed {len(linked)} new domains ({', '.join(linked[:5])})"
    if counts["unconfirmed_leads"]:
        message += (f"; {counts['unconfirmed_leads']} linked domains do not exist in DNS "
                    "(kept in leads)")
    if refused:
        message += (
            f"; {refused} sites not crawled because their addresses are not globally"
            " routable (use --allow-net CIDR to opt a range in)"
        )
    return message


def _browser_capture(options: CensusOptions, run_id: int) -> str:
    """Render the sites that need a browser (``--browser``); their pages join the run."""
    from .crawl.browser import browser_capture

    result = browser_capture(
        options.db_path, run_id, options.out_dir, options.allow_nets,
        options.crawl.get("browser", "auto"), options.crawl.get("http_port"),
        options.crawl.get("https_port"))
    return f"; {result.message()}" if result.sites or result.skipped else ""


def _package_wacz(options: CensusOptions, run_id: int) -> str:
    """The run's WARCs as one WACZ; a failure to package is said, not fatal to the crawl."""
    from .export import export_wacz

    try:
        return export_wacz(options.db_path, run_id, options.out_dir).message()
    except Exception as exc:  # the WARCs are there whatever happens to the package
        log.warning("run %d: no WACZ: %s", run_id, exc)
        return f"no WACZ: {exc}"


def _classify_stage(
    db: sqlite_utils.Database,
    run_id: int,
    options: CensusOptions,
    progress: ProgressCallback | None,
) -> StageResult:
    from .classify import classify_run

    report = (lambda done, total: progress("classify", done, total)) if progress else None
    classify_run(db, run_id, report)
    return StageResult(RunStatus.COMPLETE, classify_message(run_counts(db, run_id)))


def classify_message(counts: dict[str, Any]) -> str:
    """What classify found: purposes from content apart from guesses from a name alone."""
    unknown = counts["classified"] - counts["tagged"] - counts["guessed"]
    return (
        f"classify: {counts['tagged']} of {counts['classified']} sites tagged"
        + (f", {counts['guessed']} guessed from the name alone" if counts["guessed"] else "")
        + (f", {unknown} unknown" if unknown else "")
    )


def _compare_stage(
    db: sqlite_utils.Database,
    run_id: int,
    options: CensusOptions,
    progress: ProgressCallback | None,
) -> StageResult:
    from .diff import compare_with_previous

    diff = compare_with_previous(db, run_id)
    if diff is None:
        return StageResult(RunStatus.COMPLETE, "compare: the first census of this zone")
    return StageResult(
        RunStatus.COMPLETE, f"compare: {len(diff.changes)} changes since run {diff.run_a['id']}"
    )


def _screenshots_stage(
    db: sqlite_utils.Database,
    run_id: int,
    options: CensusOptions,
    progress: ProgressCallback | None,
) -> StageResult:
    from .screenshots import take_screenshots

    result = take_screenshots(
        options.db_path,
        run_id,
        options.out_dir,
        options.allow_nets,
        http_port=options.crawl.get("http_port"),
        https_port=options.crawl.get("https_port"),
        progress=progress,
    )
    return StageResult(RunStatus.COMPLETE, result.message())


STAGE_FUNCTIONS: dict[str, StageFn] = {
    "probe": _probe_stage,
    "crawl": _crawl_stage,
    "screenshots": _screenshots_stage,
    "classify": _classify_stage,
    "compare": _compare_stage,
}


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


def stored_options(run: dict[str, Any], **overrides: Any) -> CensusOptions:
    """The options a run was started with (``runs.options``), with ``overrides``."""
    stored = {k: v for k, v in run["options"].items() if k in CensusOptions.__dataclass_fields__}
    stored = {k: tuple(v) if isinstance(v, list) else v for k, v in stored.items()}
    stored.pop("tsig", None)  # recorded without its secret; only the probe transfers
    if "crawl" in overrides:
        overrides["crawl"] = {**stored.get("crawl", {}), **overrides["crawl"]}
    return CensusOptions(**{**stored, **overrides})


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
