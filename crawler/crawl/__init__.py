"""The crawl stage: Scrapy settings for a run, and the crawl run in a child process.

Twisted's reactor cannot be restarted, so each crawl runs ``CrawlerProcess`` in a fresh
``spawn`` child: a CLI run, a rerun of the stage and a test suite can crawl as often as they
like.  The child writes the census itself (WARC files and rows); the parent holds the writer
lock and turns the close reason into the stage's status.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import queue
import resource
import signal
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..db import reading, run_domains
from .children import die_with_parent

if TYPE_CHECKING:  # not imported: the probe's modules would load in every worker and the writer
    from ..probe.options import ProgressCallback

log = logging.getLogger(__name__)

# Run options of the crawl stage -> Scrapy settings.
OPTION_SETTINGS = {
    "max_pages": "CENSUS_MAX_PAGES",
    "http_port": "CENSUS_HTTP_PORT",
    "https_port": "CENSUS_HTTPS_PORT",
    "delay": "DOWNLOAD_DELAY",
    "download_timeout": "DOWNLOAD_TIMEOUT",
    "warc_max_size": "CENSUS_WARC_MAX_SIZE",
    "concurrent_requests": "CONCURRENT_REQUESTS",
    "concurrent_per_domain": "CONCURRENT_REQUESTS_PER_DOMAIN",
    "domains": "CENSUS_DOMAINS",
    "resume": "CENSUS_RESUME",
    "extract_workers": "CENSUS_EXTRACT_WORKERS",
}

GC_THRESHOLD = 10_000
"""Allocations between the reactor's young-generation collections (Python's default is
700).  Scrapy makes and drops some 300 objects a page; at 700 the reactor ran about 1,000
collections, 90 of the middle and 8 full ones a bench crawl, each full one walking every
module, class and setting loaded at the start."""

WRITER_RESTARTS = 2
"""Times a crawl whose writer process died is resumed at once before the stage fails."""

STOP_GRACE = 5.0
"""Seconds a stopping crawl gets to finish what is in flight before it is told again."""
STOP_FORCE = 3.0
"""Seconds after the second request before the crawl process is killed."""


@dataclass
class CrawlResult:
    finish_reason: str
    pages: int
    sites: int
    alive: int
    refused: int
    stats: dict[str, Any]


def crawl_result(db_path: str, run_id: int, reason: str, stats: dict[str, Any]) -> CrawlResult:
    """What a crawl pass ended with, counted from the census (the rows are the truth).

    The site and page counts are read back rather than tallied on the way, so a resumed or
    distributed crawl reports the whole run, not just its own pass.
    """
    with reading(db_path) as conn:
        sites, alive, refused = conn.execute(
            "SELECT count(*), coalesce(sum(alive), 0), "
            "coalesce(sum(error LIKE '%not crawled:%'), 0) FROM sites WHERE run_id = ?",
            [run_id],
        ).fetchone()
        pages = conn.execute("SELECT count(*) FROM pages WHERE run_id = ?", [run_id]).fetchone()[0]
    return CrawlResult(reason, pages, sites, alive, refused, stats)


def crawl_settings(
    db_path: str, run_id: int, out_dir: str, allow_nets: list[str], options: dict[str, Any]
) -> dict[str, Any]:
    """The settings of one crawl, on top of ``crawler/crawl/settings.py``."""
    settings: dict[str, Any] = {
        "CENSUS_DB": db_path,
        "CENSUS_RUN_ID": run_id,
        "CENSUS_OUT": out_dir,
        "CENSUS_ALLOW_NET": list(allow_nets),
        "CENSUS_OPTIONS": dict(options),
        "ROBOTSTXT_OBEY": not options.get("ignore_robots", False),
    }
    for option, name in OPTION_SETTINGS.items():
        if options.get(option) is not None:
            settings[name] = options[option]
    if options.get("delay") == 0:
        settings["AUTOTHROTTLE_ENABLED"] = False
    return settings


class LevelFilter(logging.Filter):
    """Drop records below the level given for their logger or its nearest named parent."""

    def __init__(self, levels: dict[str, int]) -> None:
        super().__init__()
        self.levels = levels

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        while name not in self.levels and "." in name:
            name = name.rsplit(".", 1)[0]
        return record.levelno >= self.levels.get(name, self.levels.get("", logging.NOTSET))


PROGRESS_EVERY = 0.2
"""Seconds between progress messages to the parent: a message a page woke the queue's
feeder thread, and took the reactor's GIL, 2,000 times on the bench."""


class _Progress:
    """Pages stored so far, sent to the parent at most every ``PROGRESS_EVERY`` seconds,
    and once more at the end."""

    def __init__(self, messages: Any) -> None:
        self.messages = messages
        self.done: int | None = None
        self.sent: int | None = None
        self.last = 0.0

    def __call__(self, step: str, done: int, total: int | None) -> None:
        self.done = done
        now = time.monotonic()
        if now - self.last >= PROGRESS_EVERY:
            self.last = now
            self.flush()

    def __deepcopy__(self, memo: dict[int, Any]) -> _Progress:
        return self  # Scrapy copies its settings; the queue is the parent's, one of a kind

    def flush(self) -> None:
        if self.done is not None and self.done != self.sent:
            self.sent = self.done
            self.messages.put(("progress", self.done))


def _planned_workers(overrides: dict[str, Any]) -> int:
    """The analysis workers the spider will ask for (``workers.planned_workers``)."""
    from . import settings as defaults
    from .workers import planned_workers

    def setting(name: str) -> Any:
        return overrides.get(name, getattr(defaults, name, None))

    configured = setting("CENSUS_EXTRACT_WORKERS")
    if configured is not None and int(configured) <= 0:
        return 0
    domains = setting("CENSUS_DOMAINS")
    if isinstance(domains, str):
        domains = [d for d in domains.split(",") if d.strip()]
    if not domains:
        with reading(str(setting("CENSUS_DB"))) as conn:
            domains = run_domains(conn, int(setting("CENSUS_RUN_ID")))
    return planned_workers(configured, len(domains), int(setting("CENSUS_MAX_PAGES")))


def _launch_helpers(overrides: dict[str, Any], level: int) -> None:
    """Start the writer and the analysis workers before Scrapy is imported: they load their
    modules (and the language model) while this process imports Scrapy, and are ready when
    the first pages arrive.  The writer process is the first worker (``workers.py``), except
    in a resumed crawl (``analysing_writer``)."""
    from . import workers, writer

    try:
        planned = _planned_workers(overrides)
    except Exception as exc:  # the spider starts them itself then
        log.warning("analysis workers not started early: %s", exc)
        planned = 0
    analyses = planned > 0 and workers.analysing_writer(bool(overrides.get("CENSUS_RESUME")))
    logging.getLogger().setLevel(level)  # the writer's level
    writer.launch(analyses=analyses)
    workers.launch(planned - 1 if analyses else planned)


def _child(overrides: dict[str, Any], levels: dict[str, int], messages: Any) -> None:
    die_with_parent("crawl process")
    _launch_helpers(overrides, levels.get("", logging.WARNING))
    from scrapy.crawler import CrawlerProcess
    from scrapy.settings import Settings

    from .spider import CensusSpider

    settings = Settings()
    settings.setmodule("crawler.crawl.settings", priority="project")
    settings.update(overrides, priority="cmdline")
    progress = _Progress(messages)
    settings.set("CENSUS_PROGRESS", progress)
    # The child logs as the parent was told to (a spawn child inherits no logging setup).
    # Scrapy resets its loggers' levels whenever it configures logging, so the levels are
    # kept by a filter on the handler instead.
    logging.basicConfig(
        level=levels.get("", logging.WARNING),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(LevelFilter(levels))
    settings.set("LOG_INSTALL_ROOT_HANDLER", False)
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(CensusSpider)
    process.crawl(crawler)
    # Scrapy's logging setup put its logger at DEBUG: a record for every response and item
    # was made (caller lookup included), then dropped by the filter.  At the filter's level
    # they are not made at all.
    for name in ("scrapy", "twisted"):
        logger = logging.getLogger(name)
        logger.setLevel(max(logger.getEffectiveLevel(), levels.get(name, logging.NOTSET)))
    from twisted.internet import reactor

    # The parent decides when the crawl stops (Ctrl-C and SIGTERM alike reach it); a Ctrl-C
    # in the terminal also reaches this process, and must not count as a second request.
    # Scrapy installs its handlers at startup, so this runs just after them.
    reactor.callWhenRunning(  # type: ignore[attr-defined]
        reactor.callLater, 0, signal.signal, signal.SIGINT, signal.SIG_IGN  # type: ignore
    )
    # What the start loaded (Scrapy, Twisted, the census' modules, the settings) lives as long
    # as the process: frozen, the collector never walks it again; the crawl's own garbage is
    # collected as before, only in larger steps.
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 10, 10)
    if os.environ.get("CENSUS_PROFILE"):  # a cProfile of the crawl process, for bench/
        import cProfile

        cProfile.runctx("process.start()", globals(), {"process": process},
                        os.environ["CENSUS_PROFILE"])
    else:
        process.start()
    from . import writer
    from .workers import discard_launched

    discard_launched()
    writer.discard_launched()
    progress.flush()
    stats = {k: str(v) for k, v in crawler.stats.get_stats().items()}
    usage = resource.getrusage(resource.RUSAGE_SELF)
    stats["census/cpu_seconds"] = f"{usage.ru_utime + usage.ru_stime:.2f}"  # this process's
    messages.put(("done", stats))
    # Everything is written and closed (rows, WARC files, workers), so the interpreter's
    # teardown of Scrapy, Twisted and the crawl's objects (0.1-0.3 s on the bench) is skipped:
    # the message is flushed to the parent, the logs too, and the process ends.
    messages.close()
    messages.join_thread()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def stop_child(child: Any) -> None:
    """Stop the crawl within ``STOP_GRACE + STOP_FORCE`` seconds.

    SIGTERM asks Scrapy to finish what is in flight (every page it wrote is already
    committed); a second one stops its reactor; then it is killed.  A resumed crawl picks up
    from what it recorded, whichever way it ended.
    """
    for wait in (STOP_GRACE, STOP_FORCE):
        if child.is_alive() and child.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGTERM)
        child.join(timeout=wait)
    if child.is_alive():
        child.kill()
        child.join()


def crawl_run(
    db_path: str,
    run_id: int,
    out_dir: str,
    allow_nets: list[str],
    options: dict[str, Any],
    progress: ProgressCallback | None = None,
) -> CrawlResult:
    """Crawl every site of ``run_id`` into the census and the run's WARC files.

    A crawl whose writer process died is resumed at once, up to ``WRITER_RESTARTS`` times:
    what the writer committed is kept, and a resumed crawl analyses its pages in workers of
    its own, so a page that crashed the analysing writer ends there with its
    ``extract_error``.  A writer that keeps dying stops the crawl."""
    levels = {
        name: logging.getLogger(name).getEffectiveLevel()
        for name in ("", "crawler", "scrapy", "twisted", "py.warnings", "protego")
    }
    for attempt in range(1, WRITER_RESTARTS + 2):
        overrides = crawl_settings(db_path, run_id, out_dir, allow_nets, options)
        stats = _crawl_once(overrides, levels, progress)
        if stats.get("finish_reason") != "writer_died":
            return crawl_result(db_path, run_id, stats["finish_reason"], stats)
        if attempt <= WRITER_RESTARTS:
            log.warning("the crawl's writer process died: resuming the crawl (%d of %d)",
                        attempt, WRITER_RESTARTS)
            options = {**options, "resume": True}
    raise RuntimeError(f"the crawl's writer process died {WRITER_RESTARTS + 1} times: the crawl "
                       "stopped (resume it)")


def _crawl_once(overrides: dict[str, Any], levels: dict[str, int],
                progress: ProgressCallback | None) -> dict[str, Any]:
    """Run the crawl process once; its Scrapy stats."""
    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    child = context.Process(target=_child, args=(overrides, levels, messages), name="census-crawl")
    child.start()
    stats: dict[str, Any] | None = None
    try:
        while stats is None:
            try:
                kind, value = messages.get(timeout=0.5)
            except queue.Empty:
                if not child.is_alive():
                    break
                continue
            if kind == "progress" and progress:
                progress("crawl", value, None)
            elif kind == "done":
                stats = value
        child.join()
    except KeyboardInterrupt:
        stop_child(child)
        raise
    finally:
        messages.close()
        messages.join_thread()
    if stats is None:
        raise RuntimeError(f"the crawl process ended with exit code {child.exitcode}")
    if "finish_reason" not in stats:  # Scrapy's engine never opened the spider
        raise RuntimeError("the crawl did not start (its spider failed to open; see the log)")
    return stats
