"""What each stage of a census run does: probe, crawl (with the names its links reveal, the
browser capture and the WACZ), screenshots, classify and compare.

``STAGE_FUNCTIONS`` maps a stage's name to its function; ``census.take_stages`` runs them in
order and records each outcome.  Every message is built from the census itself, so a resumed
stage says what an uninterrupted one would.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from .census_options import CensusOptions, probe_options
from .db import Method, RunStatus, run_counts, run_domains
from .probe.options import ProgressCallback
from .profiles import Profile, load_profile

log = logging.getLogger(__name__)


@dataclass
class StageResult:
    status: RunStatus
    message: str = ""


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
