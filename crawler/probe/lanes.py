"""One server of a :class:`.flight.Flight`: its socket, its questions in flight, its pace.

Each question on its way is a :class:`Job`; each server a :class:`Lane`, whose reader takes
every datagram waiting, matches it to its question by ID *and* question, and hands the
replies (and the room they made) back to the flight.
"""

from __future__ import annotations

import logging
import os
import socket
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .engine import Server, ServerState
from .replies import HEADER_ONLY, Reply, read_reply

if TYPE_CHECKING:
    from .flight import Flight

log = logging.getLogger(__name__)

RECEIVE_BUFFER = 1 << 21
"""Our socket's buffer: a window of replies arriving together must not overflow it."""
BURST = 0.002
"""Seconds of the pace a wakeup may catch up on after a late wakeup (the event loop's timers
are about a millisecond coarse); below ~500 queries a second this is less than one query."""
MAX_READS = 512
"""Datagrams read per wakeup at most, so that timers and the caller get their turn."""


class Job:
    """One question on its way: its bytes, ID and tries, and whether it is over TCP just now."""

    __slots__ = ("asked", "done", "lane", "qid", "qname", "query", "rdtype", "tcp", "tried")

    def __init__(self, lane: Lane, qname: str, rdtype: str, asked: bytes, query: bytes) -> None:
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


class Lane:
    """One server: its socket, its questions waiting and in flight (by ID), its politeness."""

    def __init__(self, flight: Flight, server: Server, state: ServerState) -> None:
        self.flight = flight
        self.server = server
        self.state = state
        self.waiting: deque[Job] = deque()
        self.active: dict[int, Job] = {}
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

    def send(self, jobs: list[Job], now: float, tried: int) -> None:
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
