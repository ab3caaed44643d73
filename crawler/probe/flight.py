"""Many queries in flight on one socket per server: the fast path of sweeps and the record phase.

A wordlist sweep asks a hundred thousand names and the record phase tens of thousands of
questions; a coroutine, a future and a timer per query (plus dnspython's ≈ 150 µs per message)
capped them at a few thousand queries a second.  Here one :class:`Flight` drives them all:

- each question is its prebuilt bytes (the name encoded once for all its types, flags, counts
  and OPT shared), with only a 2-byte random ID put in front at send time;
- one connected, non-blocking UDP socket per server (the kernel drops datagrams from other
  addresses), registered with the event loop's reader: each wakeup reads every datagram
  waiting, matches each by ID *and* question (a wrong one is ignored as spoofed or late), and
  sends new queries into the room the replies made;
- the window (``queries_in_flight`` per server), the pace (``queries_per_second``, with a burst
  of at most ``BURST`` seconds' worth after an idle wakeup), the timeout, retries with their
  backoff and the give-up rule are the engine's own (:class:`.engine.Limits`,
  :meth:`.engine.Engine.count`); deadlines are kept in send order, so one timer serves them all;
- replies are read by :mod:`.replies` (header only when they carry no answer records);
  truncated ones go to dnspython over TCP (:meth:`.engine.Engine.dnspython_try`), the rare case.

Results come back in lists, one per wakeup, through ``async for``: a caller writes them in big
batches and never holds one task per query.

The questions' bytes are built in :mod:`.queries`, each server's socket, IDs and pace live in
:mod:`.lanes`; this module keeps the phase's bookkeeping: the backlog, windows, deadlines,
retries and the one timer.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import heapq
import itertools
import logging
import struct
import time
from collections import deque
from collections.abc import Iterable, Iterator
from types import TracebackType

import dns.exception

from .engine import EDNS_PAYLOAD, Answer, Engine, Rcode, Server, make_request
from .lanes import Job, Lane
from .queries import Question, encoded_name, type_and_class
from .replies import Reply, message_records

log = logging.getLogger(__name__)

GC_THRESHOLD = 50_000
"""Allocations between two collections of the youngest generation while a flight runs."""
BACKLOG = 4096
"""Questions taken from the caller's iterator ahead of sending (it may be a generator over a
million names)."""


class Flight:
    """The questions of one phase, asked with the engine's limits; iterate for the replies.

    >>> async with engine.flight(questions) as flight:      # doctest: +SKIP
    ...     async for replies in flight:
    ...         store(replies)
    """

    def __init__(self, engine: Engine, questions: Iterable[Question], *, recurse: bool = True,
                 dnssec: bool = False) -> None:
        self.engine = engine
        self.limits = engine.limits
        self.timeout = engine.limits.timeout
        self.window = max(1, engine.limits.queries_in_flight)
        self.source: Iterator[Question] = iter(questions)
        self.head = struct.pack("!HHHHH", 0x0100 if recurse else 0, 1, 0, 0, 1)
        self.opt = b"\0" + struct.pack("!HHIH", 41, EDNS_PAYLOAD, 0x8000 if dnssec else 0, 0)
        self.types: dict[str, bytes] = {}
        self.recurse, self.dnssec = recurse, dnssec
        self.lanes: dict[Server, Lane] = {}
        self.deadlines: deque[tuple[float, list[Job], int]] = deque()
        self.retries: list[tuple[float, int, Job]] = []
        self.order = itertools.count()
        self.queued = 0
        self.exhausted = False
        self.ignored_closed = 0
        self.results: list[Reply] = []
        self.tasks: set[asyncio.Task[Answer | None]] = set()
        self.waiter: asyncio.Future[None] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.thresholds: tuple[int, ...] | None = None
        """The collector's thresholds before the flight, to put back after it."""
        self.loop = asyncio.get_running_loop()

    async def __aenter__(self) -> Flight:
        # a flight makes a few short-lived objects per query and no cycles; at the default
        # threshold (700) the collector ran every ~70 queries and took a fifth of the CPU
        self.thresholds = gc.get_threshold()
        gc.set_threshold(max(GC_THRESHOLD, self.thresholds[0]), *self.thresholds[1:])
        try:
            self.pump()
        except BaseException:
            self.close()
            raise
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.close()

    def __aiter__(self) -> Flight:
        return self

    async def __anext__(self) -> list[Reply]:
        while not self.results:
            if self.finished():
                raise StopAsyncIteration
            self.waiter = self.loop.create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        results, self.results = self.results, []
        return results

    def finished(self) -> bool:
        return self.exhausted and not self.queued and not any(
            lane.active for lane in self.lanes.values())

    @property
    def ignored(self) -> int:
        """Datagrams that matched no question in flight, on every socket (closed ones too)."""
        return self.ignored_closed + sum(lane.ignored for lane in self.lanes.values())

    def lane(self, server: Server) -> Lane:
        lane = self.lanes.get(server)
        if lane is None:
            lane = self.lanes[server] = Lane(self, server, self.engine.state(server))
        return lane

    def take(self) -> None:
        """Move questions from the caller's iterator to their servers' queues."""
        if self.exhausted:
            return
        head, opt, types, source = self.head, self.opt, self.types, self.source
        lane: Lane | None = None
        name, wire, text = "", b"", ""  # the record phase asks 8 types of a name in a row
        for _ in range(BACKLOG - self.queued):
            item = next(source, None)
            if item is None:
                self.exhausted = True
                break
            server, qname, rdtype = item
            type_class = types.get(rdtype)
            if type_class is None:
                type_class = types[rdtype] = type_and_class(rdtype)
            if lane is None or lane.server != server:
                try:
                    lane = self.lane(server)
                except OSError as exc:  # no socket to that address (no IPv6, say)
                    self.engine.count(self.engine.state(server), server, False)
                    self.results.append(Reply(server, qname.rstrip("."), rdtype, Rcode.ERROR,
                                              (), False, f"{type(exc).__name__}: {exc}"))
                    continue
            if qname != name:
                text = qname[:-1] if qname[-1:] == "." else qname
                try:
                    name, wire = qname, encoded_name(qname)
                except (dns.exception.DNSException, UnicodeError) as exc:
                    # not a name (an empty or long label): nothing to ask, as an outcome
                    name = ""
                    self.results.append(Reply(server, text, rdtype, Rcode.ERROR, (), False,
                                              f"{type(exc).__name__}: {exc}"))
                    continue
            asked = wire + type_class
            lane.waiting.append(Job(lane, text, rdtype, asked, head + asked + opt))
            self.queued += 1

    def pump(self) -> None:
        """Expire what timed out, send what is due, refill every window; arm the timer."""
        now = time.monotonic()
        deadlines = self.deadlines
        while deadlines and deadlines[0][0] <= now:
            _, jobs, tried = deadlines.popleft()
            for job in jobs:
                if not job.done and job.tried == tried and not job.tcp:
                    self.timed_out(job, now)
        while self.retries and self.retries[0][0] <= now:
            job = self.retries[0][2]
            lane = job.lane
            if job.done:  # a late reply to the last try came during the backoff
                heapq.heappop(self.retries)
            elif lane.state.dead:
                heapq.heappop(self.retries)
                self.give_up(job, "timed out")
            elif lane.slots(now, 1):
                heapq.heappop(self.retries)
                lane.send([job], now, job.tried + 1)
            else:
                break
        while True:
            self.take()
            sent = False
            for lane in list(self.lanes.values()):
                sent = self.refill(lane, now) or sent
            if not sent or self.exhausted:
                break
        if deadlines:
            self.wake_at(deadlines[0][0])
        if self.retries:
            self.wake_at(self.retries[0][0])
        if self.results or self.finished():
            self.wake()

    def refill(self, lane: Lane, now: float) -> bool:
        """Send the lane's waiting questions into its window, at its pace; True if any went."""
        waiting, active = lane.waiting, lane.active
        room = min(self.window - len(active), len(waiting))
        if room <= 0:
            return False
        if lane.state.dead:
            self.queued -= len(waiting)
            for job in waiting:
                job.done = True
                self.results.append(Reply(lane.server, job.qname, job.rdtype, Rcode.TIMEOUT,
                                          (), False, "server given up"))
            waiting.clear()
            return False
        room = lane.slots(now, room)
        if not room:
            return False
        jobs = [waiting.popleft() for _ in range(room)]
        new_id = lane.new_id
        for job in jobs:
            job.qid = qid = new_id()
            active[qid] = job
        self.queued -= room
        lane.send(jobs, now, 1)
        return True

    def timed_out(self, job: Job, now: float) -> None:
        """A try got no reply in time: try again after the backoff, or give the job up."""
        state = job.lane.state
        state.timeouts += 1
        if job.tried > self.limits.retries or state.dead:
            self.give_up(job, "timed out")
        else:
            ready = now + self.limits.backoff * 2 ** (job.tried - 1)
            heapq.heappush(self.retries, (ready, next(self.order), job))

    def give_up(self, job: Job, why: str) -> None:
        job.lane.active.pop(job.qid, None)
        self.finish(job, Reply(job.lane.server, job.qname, job.rdtype, Rcode.TIMEOUT, (),
                               False, why))

    def finish(self, job: Job, reply: Reply) -> None:
        if job.done:
            return
        job.done = True
        self.engine.count(job.lane.state, job.lane.server, reply.answered)
        self.results.append(reply)

    def to_tcp(self, job: Job) -> None:
        """A truncated reply: this try goes on over TCP, through dnspython."""
        job.tcp = True
        request = make_request(job.qname, job.rdtype, dnssec=self.dnssec, recurse=self.recurse)
        task = self.loop.create_task(self.engine.dnspython_try(
            job.lane.server, request, job.qname, job.rdtype, tcp=True))
        self.tasks.add(task)
        task.add_done_callback(functools.partial(self.tcp_done, job))

    def tcp_done(self, job: Job, task: asyncio.Task[Answer | None]) -> None:
        self.tasks.discard(task)
        job.tcp = False
        if task.cancelled() or job.done:
            return
        if task.exception() is not None:  # dnspython_try turns the expected ones into values
            exc = task.exception()
            job.lane.active.pop(job.qid, None)
            self.finish(job, Reply(job.lane.server, job.qname, job.rdtype, Rcode.ERROR, (),
                                   False, f"{type(exc).__name__}: {exc}"))
            self.pump()
            return
        answer = task.result()
        if answer is None:
            self.timed_out(job, time.monotonic())
        else:
            job.lane.active.pop(job.qid, None)
            records = message_records(answer.response) if answer.response is not None else []
            self.finish(job, Reply(answer.server, answer.qname, answer.rdtype, answer.rcode,
                                   records, answer.answered, answer.error))
        self.pump()

    def wake_at(self, when: float) -> None:
        """Run :meth:`pump` at ``when`` (the earliest of what is asked)."""
        timer = self.timer
        if timer is not None and not timer.cancelled() and timer.when() <= when:
            return
        if timer is not None:
            timer.cancel()
        self.timer = self.loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self.timer = None
        self.pump()

    def wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def close(self) -> None:
        if self.thresholds is not None:
            gc.set_threshold(*self.thresholds)
            self.thresholds = None
        if self.timer is not None:
            self.timer.cancel()
        for task in self.tasks:
            task.cancel()
        for lane in self.lanes.values():
            lane.close()
            self.ignored_closed += lane.ignored
        self.lanes.clear()
