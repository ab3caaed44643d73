"""Page analysis in worker processes, so the crawl uses more than the reactor's one core.

The reactor fetches, writes the WARC and the census; ``analyse.analyse`` (extraction, the
script sandbox, the requisite scan) runs in spawn processes, each with the language model
loaded once.  The spider awaits the result, so a page's items are yielded, and stored, only
once it is analysed: nothing is recorded before it is stored, as in-process.

Workers are started as ``python -m crawler.crawl.workers FD``, not by multiprocessing's spawn,
which would import the parent's main module (the CLI, a bench script) in each.  Each worker
is one socket pair: the reactor writes the jobs of one turn of its event loop as one pickled
list (without waiting: what the pipe has no room for is sent when the event loop says it
has) and reads the answers when the event loop says the pipe is readable, with no thread in
between (``ProcessPoolExecutor``'s manager thread cost the reactor more than the pickling
itself, and a write a page, each waking the worker, cost it about 0.2 ms a page under the
profiler).  A reader thread in the worker takes jobs off the pipe as they come, so the
reactor's write never waits on the worker's answers.

In a crawl the writer process (``writer.py``) is the first worker: it analyses the pages
sent to it beside writing them, so one worker is one process fewer, and a page's body goes
to it once.  ``Workers(count)`` then starts ``count - 1`` processes of its own.

A worker that dies (a page that crashed lxml, the kernel's OOM killer) is replaced and its
pages are tried once more in the new one; a page that kills that one too keeps its row with
``extract_error``.  After ``MAX_RESTARTS`` replacements the analysis goes on in the reactor's
process.  Workers die with the crawl process (``PR_SET_PDEATHSIG``) and ignore Ctrl-C, which
the crawl process leaves to its parent too.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import pickle
import queue
import signal
import socket
import sys
import threading
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from .analyse import Analysis, PageJob, analyse, analyse_safely, content_type_of, warm
from .children import Launched, die_with_parent, discard, frame, reap, spawn
from .extract import Extracted
from .writer import WriterClient, WriterDied

log = logging.getLogger(__name__)

MAX_RESTARTS = 3

WORKERS_FROM_PAGES = 1500
"""Analysis workers only for a crawl that may fetch this many pages (sites x max pages):
starting one (Python, lxml, the language model) costs about 0.5 s of CPU, more than the
analysis of a short crawl (a lab test, a rerun of a few sites) that it would take over."""

_launched: list[Launched] = []
"""Workers started before the crawl's event loop (``launch``), waiting for ``Workers.start``."""


def planned_workers(configured: int | None, sites: int, max_pages: int) -> int:
    """The analysis workers of a crawl: as configured, else ``default_workers`` for a crawl
    of ``WORKERS_FROM_PAGES`` possible pages or more, else none."""
    if configured is not None:
        return max(0, int(configured))
    return default_workers() if sites * max_pages >= WORKERS_FROM_PAGES else 0


def analysing_writer(resume: bool) -> bool:
    """Whether the writer process analyses pages too: not in a resumed crawl.  A page that
    crashes the parser or the sandbox takes the writer with it and stops the crawl process
    (a worker of its own would have been replaced and the page retried); ``crawl_run`` then
    resumes the crawl, which analyses in workers of their own, where the page ends with its
    ``extract_error`` and the crawl completes."""
    return not resume


def launch(count: int) -> None:
    """Start ``count`` workers now, before Scrapy is even imported: a worker takes about as
    long to start (Python, lxml, the language model) as the crawl process takes to send its
    first requests, and the first pages would wait for it (2-3 s of an idle downloader on
    the bench).  ``Workers.start`` adopts them; ``discard_launched`` ends those it did not."""
    for _ in range(count - len(_launched)):
        _launched.append(spawn("crawler.crawl.workers"))


def discard_launched() -> None:
    """End launched workers no crawl adopted (a short crawl, or one that failed to start)."""
    discard(_launched)


def default_workers() -> int:
    """One worker per core the reactor leaves free, at most four; none on one core (a
    worker there would only add copying)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(0, min(4, (cores or 1) - 1))


class WorkerDied(Exception):
    pass


def _serve(conn: Any) -> None:
    """A worker: answer each list of ``(id, PageJob)`` with the list of their ``(id,
    Analysis)`` until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent("analysis worker")
    jobs: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()

    def read() -> None:
        try:
            while True:
                jobs.put(conn.recv_bytes())
        except (EOFError, OSError):
            jobs.put(None)

    threading.Thread(target=read, name="jobs", daemon=True).start()
    threading.Thread(target=warm, name="warm", daemon=True).start()  # pages that need no
    # language model (most declare their language) need not wait for it
    while (data := jobs.get()) is not None:
        answers = []
        for job_id, job in pickle.loads(data):
            if job is None:
                return
            answers.append((job_id, analyse_safely(job)))
        conn.send_bytes(pickle.dumps(answers, protocol=pickle.HIGHEST_PROTOCOL))


@dataclass
class _Worker:
    process: Any
    conn: Any
    """The pipe, read as ``multiprocessing`` frames (blocking reads when it is readable)."""
    sock: socket.socket
    """The same pipe, written without waiting (``MSG_DONTWAIT``)."""
    pending: dict[int, tuple[asyncio.Future[Analysis], PageJob]] = field(default_factory=dict)
    outbox: list[tuple[int, PageJob]] = field(default_factory=list)
    """Jobs asked for in this turn of the event loop, sent together at its end: one write
    (and one wake-up of the worker) for all of them, not one a page."""
    unsent: bytearray = field(default_factory=bytearray)
    """Framed messages the pipe had no room for yet, sent when it is writable again."""
    waiting: bool = False
    """Whether the event loop watches the pipe for room (``unsent`` is not empty)."""


class Workers:
    """``count`` analysis processes, or the reactor's own process with 0."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.workers: list[_Worker] = []
        self.restarts = 0
        self.ids = itertools.count()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.writer: WriterClient | None = None
        """The crawl's writer process, the first of the workers (``writer.py``)."""

    def start(self, writer: WriterClient | None = None) -> None:
        """Start the workers (they load the language model at once), the ``writer`` being
        the first of them; with none, load the model in a thread here."""
        try:
            self.loop = asyncio.get_running_loop()
        except RuntimeError:  # not in a crawl with the asyncio reactor
            self.count = 0
        if self.count <= 0:
            discard_launched()
            from .extract import warm_up

            warm_up()
            return
        self.writer = writer
        self.workers = [self._spawn() for _ in range(self.count - (writer is not None))]
        discard_launched()  # more were launched than the crawl wants

    def _spawn(self) -> _Worker:
        assert self.loop is not None
        process, ours = _launched.pop(0) if _launched else spawn("crawler.crawl.workers")
        worker = _Worker(process, Connection(os.dup(ours.fileno())), ours)
        self.loop.add_reader(worker.conn.fileno(), self._readable, worker)
        return worker

    @property
    def in_process(self) -> bool:
        return not self.workers and self.writer is None

    async def analyse(self, job: PageJob, token: int | None = None, tries: int = 2
                      ) -> Analysis:
        """The page's analysis, from the least busy worker; here when there is none.  The
        writer keeps the text of a page whose response it knows by ``token`` (its item will
        name it) and answers without it."""
        if self.writer is not None and self.writer.dead:
            self.writer = None  # the crawl stops (``writer_died``); its pages go on elsewhere
        if not self.workers:
            if self.writer is None:
                return analyse(job)
            return await self._analyse_in_writer(job, token, tries)
        worker = min(self.workers, key=lambda w: len(w.pending))
        if self.writer is not None and len(self.writer.analyses) <= len(worker.pending):
            return await self._analyse_in_writer(job, token, tries)
        assert self.loop is not None
        future: asyncio.Future[Analysis] = self.loop.create_future()
        job_id = next(self.ids)
        worker.pending[job_id] = (future, job)
        if not worker.outbox:
            self.loop.call_soon(self._send, worker)
        worker.outbox.append((job_id, job))
        try:
            return await future
        except WorkerDied:
            if tries > 1:
                return await self.analyse(job, token, tries - 1)
            # the page went down with two workers: it keeps its row, without its analysis
            content_type, is_html = content_type_of(job.headers)
            return Analysis(content_type, is_html,
                            Extracted(extract_error="worker: the analysis process died"))

    async def _analyse_in_writer(self, job: PageJob, token: int | None, tries: int
                                 ) -> Analysis:
        assert self.writer is not None
        try:
            return await self.writer.analyse(job, token)
        except WriterDied:
            self.writer = None
            return await self.analyse(job, token, tries)

    def _send(self, worker: _Worker) -> None:
        jobs, worker.outbox = worker.outbox, []
        if not jobs or worker not in self.workers:
            return
        worker.unsent += frame(pickle.dumps(jobs, protocol=pickle.HIGHEST_PROTOCOL))
        self._write(worker)

    def _write(self, worker: _Worker) -> None:
        """As much of ``unsent`` as the pipe takes now, the rest when it has room: a full
        pipe (the worker busy with a page) never holds the reactor up."""
        if worker not in self.workers:
            return
        assert self.loop is not None
        fd = worker.conn.fileno()
        try:
            while worker.unsent:
                del worker.unsent[:worker.sock.send(worker.unsent, socket.MSG_DONTWAIT)]
        except BlockingIOError:
            pass
        except OSError:  # its pages are in ``pending``: ``analyse`` tries them again
            self._died(worker)
            return
        if worker.unsent and not worker.waiting:
            worker.waiting = True
            self.loop.add_writer(fd, self._write, worker)
        elif not worker.unsent and worker.waiting:
            worker.waiting = False
            self.loop.remove_writer(fd)

    def _readable(self, worker: _Worker) -> None:
        try:
            while worker.conn.poll():
                for job_id, result in pickle.loads(worker.conn.recv_bytes()):
                    entry = worker.pending.pop(job_id, None)
                    if entry is not None and not entry[0].done():
                        entry[0].set_result(result)
        except (EOFError, OSError):
            self._died(worker)

    def _died(self, worker: _Worker) -> None:
        """Replace a dead worker; its pages are handed to ``analyse``'s retry."""
        if worker not in self.workers:
            return
        assert self.loop is not None
        self.loop.remove_reader(worker.conn.fileno())
        if worker.waiting:
            self.loop.remove_writer(worker.conn.fileno())
        worker.conn.close()
        worker.sock.close()
        self.workers.remove(worker)
        log.warning("an analysis worker died (exit code %s) with %d pages",
                    worker.process.poll(), len(worker.pending))
        if self.restarts < MAX_RESTARTS:
            self.restarts += 1
            self.workers.append(self._spawn())
        elif not self.workers:
            log.warning("analysis goes on in the crawl process")
        for future, _ in worker.pending.values():
            if not future.done():
                future.set_exception(WorkerDied())
        worker.pending.clear()

    def close(self) -> None:
        """Stop the workers once their pages are answered (the spider is closing)."""
        for worker in self.workers:
            if self.loop is not None:
                self.loop.remove_reader(worker.conn.fileno())
                if worker.waiting:
                    self.loop.remove_writer(worker.conn.fileno())
            with contextlib.suppress(OSError):
                worker.sock.sendall(bytes(worker.unsent) + frame(pickle.dumps([(-1, None)])))
        for worker in self.workers:
            reap(worker.process)
            worker.conn.close()
            worker.sock.close()
        self.workers = []


if __name__ == "__main__":
    _serve(Connection(int(sys.argv[1])))
    # nothing to tear down (no files, no rows): the interpreter's own teardown of lxml, the
    # model and the sandbox took 0.2 s, which the crawl process waited for
    sys.stderr.flush()
    os._exit(0)
