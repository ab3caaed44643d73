"""Page analysis in worker processes, so the crawl uses more than the reactor's one core.

The reactor fetches, writes the WARC and the census; ``analyse.analyse`` (extraction, the
script sandbox, the requisite scan) runs in a pool of spawn processes, each with the language
model loaded once.  The spider awaits the result, so a page's items are yielded, and stored,
only once it is analysed: nothing is recorded before it is stored, as in-process.

A worker that dies (a page that crashed lxml, the kernel's OOM killer) breaks the pool: a new
pool is started and the page tried once more there; a page that breaks that one too keeps its
row with ``extract_error``.  After ``MAX_RESTARTS`` new pools the analysis goes on in the
reactor's process.  Workers die with the crawl process (``PR_SET_PDEATHSIG``) and ignore
Ctrl-C, which the crawl process leaves to its parent too.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from .analyse import Analysis, PageJob, analyse, content_type_of, warm
from .extract import Extracted

log = logging.getLogger(__name__)

MAX_RESTARTS = 3


def default_workers() -> int:
    """One worker per core the reactor leaves free, at most four; none on one core (a
    worker there would only add copying)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(0, min(4, (cores or 1) - 1))


def _init_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        log.debug("cannot tie the analysis worker to the crawl process")
    if os.getppid() == 1:
        os._exit(1)


class Workers:
    """A pool of ``count`` analysis processes, or the reactor's own process with 0."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.pool: ProcessPoolExecutor | None = None
        self.restarts = 0

    def start(self) -> None:
        """Start the pool and load the language model in it; with no pool, in a thread here."""
        if self.count <= 0 or not _asyncio_reactor():
            from .extract import warm_up

            self.count = 0
            warm_up()
            return
        self.pool = ProcessPoolExecutor(self.count, multiprocessing.get_context("spawn"),
                                        initializer=_init_worker)
        for _ in range(self.count):
            self.pool.submit(warm)

    @property
    def in_process(self) -> bool:
        return self.pool is None

    async def analyse(self, job: PageJob) -> Analysis:
        """The page's analysis, from a worker; in this process when there is no pool."""
        for _attempt in range(2):
            if self.pool is None:
                return analyse(job)
            pool = self.pool
            try:
                future: Future[Analysis] = pool.submit(analyse, job)
                return await asyncio.wrap_future(future)
            except BrokenProcessPool:
                log.warning("an analysis worker died (on %s or a page beside it)", job.url)
                self._restart(pool)
        # the page broke two pools: it keeps its row, without what a worker would have found
        content_type, is_html = content_type_of(job.headers)
        return Analysis(content_type, is_html,
                        Extracted(extract_error="worker: the analysis process died"))

    def _restart(self, broken: ProcessPoolExecutor) -> None:
        if self.pool is not broken:  # another page restarted it already
            return
        broken.shutdown(wait=False, cancel_futures=True)
        self.pool = None
        if self.restarts >= MAX_RESTARTS:
            log.warning("analysis goes on in the crawl process")
            return
        self.restarts += 1
        self.pool = ProcessPoolExecutor(self.count, multiprocessing.get_context("spawn"),
                                        initializer=_init_worker)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


def _asyncio_reactor() -> bool:
    try:
        from scrapy.utils.reactor import is_asyncio_reactor_installed

        return is_asyncio_reactor_installed()
    except Exception:  # no reactor installed at all: not inside a crawl
        return False
