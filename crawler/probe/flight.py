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
"""

from __future__ import annotations

import asyncio
import functools
import gc
import heapq
import itertools
import logging
import os
import socket
import struct
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType

import dns.exception
import dns.name
import dns.rdatatype

from .engine import EDNS_PAYLOAD, Answer, Engine, Rcode, Server, ServerState, make_request
from .replies import HEADER_ONLY, Reply, message_records, read_reply

log = logging.getLogger(__name__)

Question = tuple[Server, str, str]
"""Which server to ask, the name (a final dot is optional) and the type."""

RECEIVE_BUFFER = 1 << 21
"""Our socket's buffer: a window of replies arriving together must not overflow it."""
BURST = 0.002
"""Seconds of the pace a wakeup may catch up on after a late wakeup (the event loop's timers
are about a millisecond coarse); below ~500 queries a second this is less than one query."""
MAX_READS = 512
"""Datagrams read per wakeup at most, so that timers and the caller get their turn."""
GC_THRESHOLD = 50_000
"""Allocations between two collections of the youngest generation while a flight runs."""
BACKLOG = 4096
"""Questions taken from the caller's iterator ahead of sending (it may be a generator over a
million names)."""


_LENGTH = [bytes((n,)) for n in range(64)]


def encoded_name(qname: str) -> bytes:
    """The wire form of ``qname`` (a final dot is optional), as dnspython writes it.

    Its parent's form is cached (:func:`_encoded`): a sweep's names share their suffix, and the
    record phase asks eight types of each name and of its ``www.`` and ``mail.``.  Anything
    but plain labels (escapes, non-ASCII, empty or long labels) is left to dnspython.
    """
    head, _, tail = qname.partition(".")
    if not tail:
        rest = b"\0"
    elif tail[0] == ".":
        return dns.name.from_text(qname).to_wire()  # an empty label: dnspython says why
    else:
        rest = _encoded(tail)
    if 0 < len(head) < 64 and head.isascii() and "\\" not in head and len(head) + len(rest) < 255:
        return _LENGTH[len(head)] + head.encode() + rest
    return dns.name.from_text(qname).to_wire()


@functools.lru_cache(maxsize=4096)
def _encoded(qname: str) -> bytes:
    return encoded_name(qname)


@functools.cache
def _type_class(rdtype: str) -> bytes:
    """The question's type and class IN."""
    return struct.pack("!HH", dns.rdatatype.from_text(rdtype), 1)


class _Job:
    """One question on its way: its bytes, ID and tries, and whether it is over TCP just now."""

    __slots__ = ("asked", "done", "lane", "qid", "qname", "query", "rdtype", "tcp", "tried")

    def __init__(self, lane: _Lane, qname: str, rdtype: str, asked: bytes, query: bytes) -> None:
        self.lane = lane
        self.qname = qname
        self.rdtype = rdtype
        self.asked = asked
        """The question section, as the reply must echo it."""
        self.query = query
        """The query after its ID."""
        self.qid = -1
        self.tried = 0
        self.done = False
        self.tcp = False


class _Lane:
    """One server: its socket, its questions waiting and in flight (by ID), its politeness."""

    def __init__(self, flight: Flight, server: Server, state: ServerState) -> None:
        self.flight = flight
        self.server = server
        self.state = state
        self.waiting: deque[_Job] = deque()
        self.active: dict[int, _Job] = {}
        self.ignored = 0
        """Datagrams that matched no query in flight (wrong ID, wrong question, late)."""
        self.sock = socket.socket(
            socket.AF_INET6 if ":" in server[0] else socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            self.sock.setblocking(False)
            self.sock.connect(server)
        except OSError:
            self.sock.close()
            raise
        self._ids: Iterator[int] = iter(())
        self.buffer = memoryview(bytearray(65535))
        flight.loop.add_reader(self.sock.fileno(), self.readable)

    def new_id(self) -> int:
        """A random ID no question in flight on this socket holds (drawn from the OS in
        blocks: one system call per 2,048 IDs)."""
        while True:
            qid = next(self._ids, None)
            if qid is None:
                self._ids = iter(memoryview(os.urandom(4096)).cast("H"))
                continue
            if qid not in self.active:
                return qid

    def slots(self, now: float, wanted: int) -> int:
        """Take up to ``wanted`` slots of this server's pace that have come; how many."""
        state = self.state
        when = max(state.next_slot, now - BURST)
        if when > now:
            self.flight.wake_at(when)
            return 0
        if state.interval <= 0:
            state.next_slot = when
            return wanted
        taken = min(wanted, int((now - when) / state.interval) + 1)
        state.next_slot = when + taken * state.interval
        if taken < wanted:
            self.flight.wake_at(state.next_slot)
        return taken

    def send(self, jobs: list[_Job], now: float, tried: int) -> None:
        """Try ``tried`` of each job (their IDs set), all with one deadline."""
        send = self.sock.send
        for job in jobs:
            job.tried = tried
            try:
                send(job.qid.to_bytes(2, "big") + job.query)
            except (BlockingIOError, ConnectionRefusedError, InterruptedError) as exc:
                # a full send buffer or an ICMP error of an earlier query: this try is lost
                # as a datagram would be, and the timeout handles it
                log.debug("send to %s:%d failed: %s", *self.server, exc)
        self.state.queries += len(jobs)
        self.flight.deadlines.append((now + self.flight.timeout, jobs, tried))

    def readable(self) -> None:
        """Read every datagram waiting (up to ``MAX_READS``), then refill the windows."""
        recv, buffer = self.sock.recv_into, self.buffer
        active, server, state = self.active, self.server, self.state
        flight = self.flight
        results = flight.results
        new_reply = tuple.__new__  # a Reply without the call of its __new__: the hot path
        for _ in range(MAX_READS):
            try:
                size = recv(buffer)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                continue  # an ICMP error (port unreachable): no answer, the query times out
            job = active.get((buffer[0] << 8) | buffer[1]) if size >= 12 else None
            if job is None or job.tcp:
                self.ignored += 1
                continue
            data = buffer[:size].tobytes()
            asked = job.asked
            if not data[2] & 0x80 or data[4] or data[5] != 1 or (
                not data.startswith(asked, 12)
                and data[12:12 + len(asked)].lower() != asked.lower()
            ):
                self.ignored += 1
                continue
            rcode = data[3] & 0x0F
            if not (data[6] or data[7] or data[2] & 0x02) and rcode in HEADER_ONLY:
                # most of a sweep: no answer records, the header says it all
                reply = new_reply(Reply, (server, job.qname, job.rdtype, HEADER_ONLY[rcode],
                                          (), True, None))
            else:
                reply = read_reply(data, 12 + len(asked), server, job.qname, job.rdtype)
                if reply is None:
                    flight.to_tcp(job)
                    continue
            del active[job.qid]
            job.done = True
            if reply.answered:
                state.answered += 1
                state.failures_in_a_row = 0
            else:
                flight.engine.count(state, server, False)
            results.append(reply)
        flight.pump()

    def close(self) -> None:
        self.flight.loop.remove_reader(self.sock.fileno())
        self.sock.close()


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
        self.lanes: dict[Server, _Lane] = {}
        self.deadlines: deque[tuple[float, list[_Job], int]] = deque()
        self.retries: list[tuple[float, int, _Job]] = []
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
        self.on_timeout: Callable[[Server, str, str], None] | None = None
        """Told of each try that timed out (a checkpoint counts them per question)."""

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

    def lane(self, server: Server) -> _Lane:
        lane = self.lanes.get(server)
        if lane is None:
            lane = self.lanes[server] = _Lane(self, server, self.engine.state(server))
        return lane

    def take(self) -> None:
        """Move questions from the caller's iterator to their servers' queues."""
        if self.exhausted:
            return
        head, opt, types, source = self.head, self.opt, self.types, self.source
        lane: _Lane | None = None
        name, wire, text = "", b"", ""  # the record phase asks 8 types of a name in a row
        for _ in range(BACKLOG - self.queued):
            item = next(source, None)
            if item is None:
                self.exhausted = True
                break
            server, qname, rdtype = item
            type_class = types.get(rdtype)
            if type_class is None:
                type_class = types[rdtype] = _type_class(rdtype)
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
            lane.waiting.append(_Job(lane, text, rdtype, asked, head + asked + opt))
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

    def refill(self, lane: _Lane, now: float) -> bool:
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

    def timed_out(self, job: _Job, now: float) -> None:
        """A try got no reply in time: try again after the backoff, or give the job up."""
        state = job.lane.state
        state.timeouts += 1
        if self.on_timeout is not None:
            self.on_timeout(job.lane.server, job.qname, job.rdtype)
        if job.tried > self.limits.retries or state.dead:
            self.give_up(job, "timed out")
        else:
            ready = now + self.limits.backoff * 2 ** (job.tried - 1)
            heapq.heappush(self.retries, (ready, next(self.order), job))

    def give_up(self, job: _Job, why: str) -> None:
        job.lane.active.pop(job.qid, None)
        self.finish(job, Reply(job.lane.server, job.qname, job.rdtype, Rcode.TIMEOUT, (),
                               False, why))

    def finish(self, job: _Job, reply: Reply) -> None:
        if job.done:
            return
        job.done = True
        self.engine.count(job.lane.state, job.lane.server, reply.answered)
        self.results.append(reply)

    def to_tcp(self, job: _Job) -> None:
        """A truncated reply: this try goes on over TCP, through dnspython."""
        job.tcp = True
        request = make_request(job.qname, job.rdtype, dnssec=self.dnssec, recurse=self.recurse)
        task = self.loop.create_task(self.engine.dnspython_try(
            job.lane.server, request, job.qname, job.rdtype, tcp=True))
        self.tasks.add(task)
        task.add_done_callback(functools.partial(self.tcp_done, job))

    def tcp_done(self, job: _Job, task: asyncio.Task[Answer | None]) -> None:
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
