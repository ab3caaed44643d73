"""The crawl's writer process: the run's WARC records and census rows, beside the reactor.

The reactor hands each response (``WarcCapture``) and each item (``CensusPipeline``) over
as plain data, once per turn of its event loop, without waiting; the writer process writes
the WARC records (revisit lookup, digests, gzip), then the rows of the items in one
transaction, then answers which items are stored.  Scrapy moves on with an item only when
that answer comes, as it did when a thread wrote the rows: "stored" still means the row is
committed and the WARC record it points to written before it.  Measured on the bench, the
reactor thread was off its CPU about 2 s of the crawl waiting for the GIL that the writing
threads of its own process held; here it is alone in its process, as a bare spider is.

One process owns the run's WARC files: the ``dns:`` records (sent at ``spider_opened``),
each response with its certificate record before it, its request record after.  A response
is known to the reactor by a token; an item that needs its record's location (``pages``,
``requisites``) carries the token, and the writer fills in the file, offset, record id and
the page it revisits, which it looked up itself.  Both travel on one pipe, in order, so a
token is always written before the item that names it.

When the crawl has analysis workers (``workers.planned_workers``), the writer is the first
of them: a page's response and its analysis job go to it in one message (one pickled body),
it analyses the page and answers with what the reactor needs to go on (links, title,
language) but keeps the page's text, which it writes into the page's row when the item
comes.  On two cores the crawl is then two processes, not three, each page crosses between
them once, and the reactor, which every other process had been taking the core from, waits
for it less.

A writer that dies (killed, out of memory, a page that crashed the parser) fails the items
it had not answered, and the crawl closes with ``writer_died``: ``crawl_run`` resumes it at
once (``WRITER_RESTARTS`` times at most, then raises), and the resumed crawl reads back what
the WARC and the rows hold, as after a kill of the whole crawl.
The writer dies with the crawl process (``PR_SET_PDEATHSIG``) and ignores Ctrl-C, which the
crawl process leaves to its parent too.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import os
import pickle
import signal
import socket
import sys
from collections.abc import Iterable
from typing import Any

from .children import Launched, die_with_parent, discard, frame, reap, spawn

log = logging.getLogger(__name__)

MAX_GROUP = 400
"""Messages (responses and items) taken into one transaction at most."""

KEEP_TOKENS = 100_000
"""Locations of responses kept for the items that name them: a response's item follows it
within the responses in flight; robots.txt and redirects are named by none."""

KEEP_TEXTS = 10_000
"""Texts of analysed pages kept for their items: an item follows its analysis at once,
unless the spider drops it (a resumed crawl's page recorded before the kill)."""

_launched: list[Launched] = []


class WriterDied(Exception):
    """The writer process ended before it answered for an item."""


def launch(analyses: bool = False) -> None:
    """Start the writer now, before Scrapy is imported (``crawl._child``): it is ready, its
    modules loaded (with ``analyses``, the page analysis and its language model too), when
    the crawl opens."""
    if not _launched:
        _launched.append(_popen(analyses))


def discard_launched() -> None:
    discard(_launched)


def _popen(analyses: bool = False) -> Launched:
    return spawn("crawler.crawl.writer", str(logging.getLogger().getEffectiveLevel()),
                 "analyses" if analyses else "")


class WriterClient:
    """The crawl process's end: messages out once per loop turn, answers in when readable."""

    def __init__(self, config: dict[str, Any]) -> None:
        from multiprocessing.connection import Connection

        self.process, self.sock = _launched.pop(0) if _launched else _popen()
        discard_launched()
        self.conn = Connection(os.dup(self.sock.fileno()))
        self.outbox: list[tuple[Any, ...]] = []
        self.unsent = bytearray()
        self.pending: dict[int, tuple[asyncio.Future[Any], Any]] = {}
        self.analyses: dict[int, asyncio.Future[Any]] = {}
        """Pages sent to be analysed here, by job id (``analyse``)."""
        self.ids = itertools.count()
        self.tokens = itertools.count()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.waiting = False
        self.dead: str | None = None
        """Why the writer is gone, if it died (not when it was closed)."""
        self.closed = False
        self.files: list[str] = []
        self.finished = False
        """Whether the writer said it closed its files (its last answer)."""
        self.on_death: Any = None
        """Called once, in the event loop, when the writer dies (the crawl closes)."""
        self._send_now([("open", config)])

    # -- sending ---------------------------------------------------------------------------

    def send(self, message: tuple[Any, ...]) -> None:
        if self.dead or self.closed:
            return
        if self.loop is None:
            try:
                self.loop = asyncio.get_running_loop()
            except RuntimeError:
                self._send_now([message])
                return
            self.loop.add_reader(self.conn.fileno(), self._readable)
        if not self.outbox:
            self.loop.call_soon(self._flush)
        self.outbox.append(message)

    def _send_now(self, messages: list[tuple[Any, ...]]) -> None:
        """Blocking: before the event loop runs, and at the close."""
        data = bytes(self.unsent) + frame(pickle.dumps(messages, pickle.HIGHEST_PROTOCOL))
        self.unsent.clear()
        self.sock.sendall(data)

    def _flush(self) -> None:
        messages, self.outbox = self.outbox, []
        if not messages or self.dead or self.closed:
            return
        self.unsent += frame(pickle.dumps(messages, protocol=pickle.HIGHEST_PROTOCOL))
        self._write()

    def _write(self) -> None:
        """As much as the pipe takes now, the rest when it has room: never a wait."""
        if self.dead or self.closed:
            return
        assert self.loop is not None
        try:
            while self.unsent:
                del self.unsent[:self.sock.send(self.unsent, socket.MSG_DONTWAIT)]
        except BlockingIOError:
            pass
        except OSError as exc:
            self._died(f"cannot write to it: {exc}")
            return
        fd = self.conn.fileno()
        if self.unsent and not self.waiting:
            self.waiting = True
            self.loop.add_writer(fd, self._write)
        elif not self.unsent and self.waiting:
            self.waiting = False
            self.loop.remove_writer(fd)

    # -- what the crawl sends ----------------------------------------------------------------

    def dns(self, only: list[str]) -> None:
        self.send(("dns", only))

    def exchange(self, fields: dict[str, Any]) -> int:
        """A response and its request to write (``record_exchange``); the token an item
        names it by."""
        token = next(self.tokens)
        self.send(("exchange", token, fields))
        return token

    def store(self, item: Any) -> asyncio.Future[Any]:
        """The item's future, settled when its row is committed (or failed)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if self.dead:
            future.set_exception(WriterDied(self.dead))
            return future
        item_id = next(self.ids)
        self.pending[item_id] = (future, item)
        self.send(("item", item_id, item))
        return future

    def analyse(self, job: Any, token: int | None) -> asyncio.Future[Any]:
        """The page's ``Analysis``; with the ``token`` of its response, without its text,
        which the writer keeps for the item that names the token."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.dead:
            future.set_exception(WriterDied(self.dead))
            return future
        job_id = next(self.ids)
        self.analyses[job_id] = future
        self.send(("analyse", job_id, job, token))
        return future

    # -- answers ---------------------------------------------------------------------------

    def _readable(self) -> None:
        try:
            while self.conn.poll():
                self._answers(pickle.loads(self.conn.recv_bytes()))
        except (EOFError, OSError) as exc:
            self._died(f"exit code {self.process.poll()}" if isinstance(exc, EOFError)
                       else str(exc))

    def _answers(self, answers: list[tuple[Any, ...]]) -> None:
        for answer in answers:
            if answer[0] == "closed":
                self.files, self.finished = answer[1], True
                continue
            if answer[0] == "analysis":
                future = self.analyses.pop(answer[1], None)
                if future is not None and not future.done():
                    future.set_result(answer[2])
                continue
            item_id, error = answer
            entry = self.pending.pop(item_id, None)
            if entry is None or entry[0].done():
                continue
            if error is None:
                entry[0].set_result(entry[1])
            else:
                entry[0].set_exception(RuntimeError(error))

    def _died(self, why: str) -> None:
        if self.dead or self.closed:
            return
        self.dead = f"the crawl's writer process died ({why})"
        log.error("%s with %d items not stored: the crawl stops", self.dead, len(self.pending))
        if self.loop is not None:
            self.loop.remove_reader(self.conn.fileno())
            if self.waiting:
                self.loop.remove_writer(self.conn.fileno())
        self._fail_all(WriterDied(self.dead))
        if self.on_death is not None:
            self.on_death(self.dead)

    def close(self) -> None:
        """Send what is left, wait for the writer to write it and end (the spider closes)."""
        if self.closed:
            return
        if self.loop is not None and not self.dead:
            self.loop.remove_reader(self.conn.fileno())
            if self.waiting:
                self.loop.remove_writer(self.conn.fileno())
        self.closed = True
        if not self.dead:
            messages, self.outbox = self.outbox, []
            try:
                self._send_now([*messages, ("close",)])
                while not self.finished:  # the answers of the last items, then "closed"
                    self._answers(pickle.loads(self.conn.recv_bytes()))
            except (EOFError, OSError) as exc:
                self.dead = f"the crawl's writer process died at the close ({exc})"
                log.error("%s", self.dead)
        reap(self.process, timeout=10)
        self.conn.close()
        self.sock.close()
        self._fail_all(WriterDied(self.dead or "closed"))

    def _fail_all(self, error: WriterDied) -> None:
        futures = [future for future, _ in self.pending.values()] + list(self.analyses.values())
        for future in futures:
            if not future.done():
                future.set_exception(error)
        self.pending.clear()
        self.analyses.clear()


# -- the writer process --------------------------------------------------------------------


class _Writer:
    """Writes what the crawl sends, in order; answers for each item once it is committed."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.files: Any = None
        self.pipeline: Any = None
        self.locations: collections.OrderedDict[int, Any] = collections.OrderedDict()
        self.texts: collections.OrderedDict[int, str | None] = collections.OrderedDict()
        """Texts of pages analysed here, by their response's token, for their items."""

    def open(self, config: dict[str, Any]) -> None:
        from ..db import connect
        from .pipelines import CensusPipeline
        from .warc import WarcFiles

        self.files = WarcFiles(config["folder"], config["prefix"], config["info"],
                               config["max_size"])
        self.pipeline = CensusPipeline(config["db_path"], config["run_id"], config["only"])
        self.pipeline.conn = connect(config["db_path"])
        # durable against the process being killed (WAL), without a disk flush per page
        self.pipeline.conn.execute("PRAGMA synchronous = NORMAL")
        self.run_id = config["run_id"]

    def serve(self) -> None:
        while True:
            try:  # what came while the last transaction was written goes in the next one
                messages = pickle.loads(self.conn.recv_bytes())
                while len(messages) < MAX_GROUP and self.conn.poll():
                    messages += pickle.loads(self.conn.recv_bytes())
            except (EOFError, OSError):  # the crawl process is gone: nothing more to write
                return
            # pages to analyse first: the reactor waits for their links, not for the rows
            analyses = [self.analyse(m[1], m[2], m[3]) for m in messages if m[0] == "analyse"]
            if analyses:
                self.conn.send_bytes(pickle.dumps(analyses, protocol=pickle.HIGHEST_PROTOCOL))
            items: list[tuple[int, Any]] = []
            closing = False
            for message in messages:
                kind = message[0]
                if kind == "item":
                    items.append((message[1], self.resolve(message[2])))
                elif kind == "exchange":
                    self.exchange(message[1], message[2])
                elif kind == "dns":
                    self.dns(message[1])
                elif kind == "open":
                    self.open(message[1])
                elif kind == "close":
                    closing = True
            answers: list[tuple[Any, ...]] = self.write(items) if items else []
            if closing:
                self.files.close()
                self.pipeline.conn.close()
                answers.append(("closed", self.files.files))
            if answers:
                self.conn.send_bytes(pickle.dumps(answers, protocol=pickle.HIGHEST_PROTOCOL))
            if closing:
                return

    def dns(self, only: list[str]) -> None:
        from .warc import dns_answers

        for host, date, server, lines in dns_answers(self.pipeline.conn, self.run_id, only):
            self.files.write_dns(host, date, server, lines)

    def exchange(self, token: int, fields: dict[str, Any]) -> None:
        try:
            self.locations[token] = record_exchange(self.files, self.pipeline.conn, fields)
        except Exception:  # as a signal handler's error was: the page keeps its row
            log.exception("WARC record of %s not written", fields["url"])
            self.locations[token] = None
        while len(self.locations) > KEEP_TOKENS:
            self.locations.popitem(last=False)

    def analyse(self, job_id: int, job: Any, token: int | None) -> tuple[Any, ...]:
        """A page's analysis, answered without its text when the item will name ``token``."""
        from .analyse import analyse_safely

        analysis = analyse_safely(job)
        if token is not None and analysis.page.text is not None:
            self.texts[token], analysis.page.text = analysis.page.text, None
            while len(self.texts) > KEEP_TEXTS:
                self.texts.popitem(last=False)
        return ("analysis", job_id, analysis)

    def resolve(self, item: Any) -> Any:
        """The item with its response's WARC location in place of the token, and its page's
        text when the page was analysed here."""
        warc = getattr(item, "warc", None)
        if warc is not None and warc.token is not None:
            if warc.token in self.texts:
                item.text = self.texts.pop(warc.token)
            item.warc = self.locations.pop(warc.token, None)
        return item

    def write(self, items: list[tuple[int, Any]]) -> list[tuple[Any, ...]]:
        conn = self.pipeline.conn
        try:
            with conn:
                for _, item in items:
                    self.pipeline.write_item(item)
            return [(item_id, None) for item_id, _ in items]
        except Exception:  # one bad item: the others are written each in its own transaction
            answers: list[tuple[Any, ...]] = []
            for item_id, item in items:
                try:
                    with conn:
                        self.pipeline.write_item(item)
                    answers.append((item_id, None))
                except Exception as exc:
                    answers.append((item_id, f"{type(exc).__name__}: {exc}"[:500]))
            return answers


def record_exchange(files: Any, db: Any, fields: dict[str, Any]) -> Any:
    """Write a response and its request into ``files`` (a revisit when ``db`` holds an earlier
    capture of the same payload; ``fields`` as ``WarcCapture`` gathers them, headers still
    bytes); its ``WarcLocation``.  The writer process and ``census worker`` both use it."""
    from .dedup import find_previous_page
    from .items import WarcLocation

    previous = find_previous_page(db, fields["url"], fields["sha256"])
    location = files.write_exchange(
        fields["url"],
        date=fields["date"],
        ip=fields["ip"],
        request_line=fields["request_line"],
        request_headers=decoded_headers(fields["request_headers"]),
        status=fields["status"],
        headers=decoded_headers(fields["headers"]),
        body=fields["body"],
        protocol=fields["protocol"],
        revisit_of=(previous["url"], previous["fetched_at"]) if previous else None,
        metadata=fields["metadata"],
    )
    return WarcLocation(location.file, location.offset, location.record_id, fields["sha256"],
                        previous["id"] if previous else None)


def decoded_headers(headers: Iterable[tuple[bytes, list[bytes]]]) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, values in headers for v in values]


def _serve(fd: int, level: int, analyses: bool = False) -> None:
    from multiprocessing.connection import Connection

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent("writer")
    logging.basicConfig(level=level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if analyses:  # loaded while the crawl process starts, not on the first page
        import threading

        from .analyse import warm

        threading.Thread(target=warm, name="warm", daemon=True).start()
    _Writer(Connection(fd)).serve()


if __name__ == "__main__":
    if os.environ.get("CENSUS_WRITER_PROFILE"):  # a cProfile of the writer, for bench/
        import cProfile

        cProfile.run("_serve(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:] == ['analyses'])",
                     os.environ["CENSUS_WRITER_PROFILE"])
    else:
        _serve(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:] == ["analyses"])
    # its files and connection are closed: the interpreter's teardown is not waited for
    logging.shutdown()
    sys.stderr.flush()
    os._exit(0)
