"""A small, polite asynchronous DNS client on dnspython.

National infrastructure can be a couple of servers on a thin link, so every server gets its own
limit on queries in flight (a semaphore) and per second (a paced bucket).  Outcomes -- NXDOMAIN,
REFUSED, a timeout -- are values (:class:`Rcode`), never exceptions: they are what the census
records.  A server that fails ``dead_after`` queries in a row (each after all its retries) and
never answered is given up for the rest of the run, so a dead resolver costs one wave of
timeouts, not one per query.

Three paths ask: :meth:`Engine.query` through dnspython, :meth:`Engine.sweep`, one question on
a prebuilt-bytes socket (:mod:`.sweep`), both handing their tries to one retry loop
(:meth:`Engine.with_retries`); and :meth:`Engine.flight`, many questions at once without a
coroutine per query (:mod:`.flight`: the wordlist and PTR sweeps and the record phase), which
keeps the same limits, timeouts, backoff and counters itself.  All count outcomes with
:meth:`Engine.count`, so the give-up rule cannot drift apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from types import ModuleType
from typing import TYPE_CHECKING, TypeVar

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

if TYPE_CHECKING:
    from .answers import AnswerLog, Kept
    from .flight import Flight
    from .sweep import Channel

log = logging.getLogger(__name__)

Server = tuple[str, int]
T = TypeVar("T")
R = TypeVar("R")
Attempt = Callable[[], Awaitable["Answer | None"]]
"""One try of a query: its outcome, or None when it timed out (and may be tried again)."""

EDNS_PAYLOAD = 1232
"""The DNS Flag Day 2020 payload: no IP fragmentation on any common path."""


class Rcode(StrEnum):
    """What one query came to."""

    NOERROR = "noerror"
    NXDOMAIN = "nxdomain"
    NODATA = "nodata"
    REFUSED = "refused"
    SERVFAIL = "servfail"
    TIMEOUT = "timeout"
    ERROR = "error"


@dataclass
class Answer:
    """One query's outcome, with the response when there was one."""

    server: Server
    qname: str
    rdtype: str
    rcode: Rcode
    response: dns.message.Message | None = None
    error: str | None = None
    replied: bool = False
    """A reply came but was classified from its header alone (the sweep fast path)."""
    tries: int = 0
    """Tries it took (each counted in the server's ``queries``); 0 when nothing was sent."""
    timeouts: int = 0
    """Of those, the tries that timed out."""

    @property
    def answered(self) -> bool:
        return self.response is not None or self.replied

    def rrsets(self, rdtype: str | None = None) -> list[dns.rrset.RRset]:
        """Answer RRsets, of ``rdtype`` only if given."""
        if self.response is None:
            return []
        if rdtype is None:
            return list(self.response.answer)
        wanted = dns.rdatatype.from_text(rdtype)
        return [r for r in self.response.answer if r.rdtype == wanted]

    def values(self, rdtype: str) -> list[str]:
        return sorted({rd.to_text() for rrset in self.rrsets(rdtype) for rd in rrset})


@dataclass
class Limits:
    queries_in_flight: int = 4
    queries_per_second: float = 20.0
    timeout: float = 3.0
    retries: int = 2
    backoff: float = 0.25
    """Wait before retry ``i`` is ``backoff * 2**i`` seconds."""
    dead_after: int = 3

    def worst_query_seconds(self) -> float:
        """The longest one query can take: every try times out, with the backoffs between."""
        tries = self.retries + 1
        return tries * self.timeout + sum(self.backoff * 2**i for i in range(self.retries))

    def give_up_seconds(self) -> float:
        """The longest a server that never answers can hold the probe.

        It is given up at its ``dead_after``-th failure, at most ``dead_after`` worst queries
        in; a query already in flight then stops at its next try, at most one timeout later.
        """
        return self.dead_after * self.worst_query_seconds() + self.timeout


@dataclass
class ServerState:
    semaphore: asyncio.Semaphore
    interval: float
    next_slot: float = 0.0
    queries: int = 0
    answered: int = 0
    failures_in_a_row: int = 0
    timeouts: int = 0
    dead: bool = False

    async def pace(self) -> None:
        """Wait for this server's next slot: at most ``1 / interval`` queries a second."""
        now = time.monotonic()
        slot = max(now, self.next_slot)
        self.next_slot = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


@dataclass
class Engine:
    """Queries with per-server limits, retries, TCP fallback and outcome counting."""

    limits: Limits = field(default_factory=Limits)
    servers: dict[Server, ServerState] = field(default_factory=dict)
    channels: dict[Server, tuple[asyncio.AbstractEventLoop, asyncio.Future[Channel]]] = field(
        default_factory=dict, repr=False
    )
    """The sweep fast path's socket per server, opened in (and only valid for) one loop."""
    answers: AnswerLog | None = None
    """The probe's answers kept from an earlier attempt of its run, and where new ones go
    (:mod:`.answers`): questions asked one at a time are answered from there when kept."""

    def state(self, server: Server) -> ServerState:
        if server not in self.servers:
            qps = self.limits.queries_per_second
            self.servers[server] = ServerState(
                asyncio.Semaphore(self.limits.queries_in_flight), 1.0 / qps if qps > 0 else 0.0
            )
        return self.servers[server]

    @property
    def answered(self) -> int:
        return sum(s.answered for s in self.servers.values())

    @property
    def timeouts(self) -> int:
        return sum(s.timeouts for s in self.servers.values())

    def silent_servers(self) -> list[Server]:
        """Servers asked something that never answered."""
        return [k for k, s in self.servers.items() if s.queries and not s.answered]

    async def query(
        self,
        server: Server,
        qname: str | dns.name.Name,
        rdtype: str,
        *,
        dnssec: bool = False,
        recurse: bool = True,
    ) -> Answer:
        """Ask ``server`` for ``qname``/``rdtype``; the outcome is in the returned Answer."""
        name = qname if isinstance(qname, dns.name.Name) else dns.name.from_text(qname)
        text = name.to_text(omit_final_dot=True)
        state = self.state(server)
        if state.dead:
            return Answer(server, text, rdtype, Rcode.TIMEOUT, error="server given up")
        answers = self.answers
        if answers is not None:
            flags = answers.flags(dnssec, recurse)
            kept = self.recall(state, server, text, rdtype, flags)
            if kept is not None:
                return kept.answer(server, text, rdtype)
        request = make_request(name, rdtype, dnssec=dnssec, recurse=recurse)
        async with state.semaphore:
            answer = await self.with_retries(
                state, server, text, rdtype,
                lambda: self.dnspython_try(server, request, text, rdtype),
            )
        self.account(state, server, answer)
        if answers is not None:
            answers.keep(answer, flags, wire_of(answer.response))
        return answer

    def recall(self, state: ServerState, server: Server, qname: str, rdtype: str,
               flags: int) -> Kept | None:
        """The answer kept for this question from an earlier attempt of the run, counted as
        it was counted then (tries, timeouts, answered or failed); None if none is kept."""
        assert self.answers is not None
        kept = self.answers.recall(server, qname, rdtype, flags)
        if kept is not None:
            state.queries += kept.tries
            state.timeouts += kept.timeouts
            self.count(state, server, kept.wire is not None)  # an answer came: its reply
        return kept

    async def sweep(
        self, server: Server, qname: str, rdtype: str, *, dnssec: bool = False,
        recurse: bool = True,
    ) -> Answer:
        """:meth:`query` on the fast path of big sweeps (:mod:`.sweep`), same outcomes.

        Answers without records are classified from the header and carry no ``response``.
        """
        return await _sweep_path().sweep_query(
            self, server, qname, rdtype, dnssec=dnssec, recurse=recurse
        )

    def flight(
        self, questions: Iterable[tuple[Server, str, str]], *, recurse: bool = True,
        dnssec: bool = False,
    ) -> Flight:
        """Ask many ``(server, name, type)`` at once on the fast path (:mod:`.flight`).

        ``async with engine.flight(questions) as flight: async for replies in flight: ...``
        gives :class:`.replies.Reply` lists, the same outcomes and records as :meth:`query`.
        """
        return _flight_module().Flight(self, questions, recurse=recurse, dnssec=dnssec)

    @contextlib.contextmanager
    def sweeping(self) -> Iterator[None]:
        """Close the sweep sockets when the sweep ends, however it ends."""
        try:
            yield
        finally:
            _sweep_path().close_channels(self.channels)

    def account(self, state: ServerState, server: Server, answer: Answer) -> None:
        """Count the outcome; give the server up at ``dead_after`` failures in a row."""
        self.count(state, server, answer.answered)

    def count(self, state: ServerState, server: Server, answered: bool) -> None:
        """:meth:`account` for the fast path (:mod:`.flight`), which has no Answer object."""
        if answered:
            state.answered += 1
            state.failures_in_a_row = 0
        else:
            state.failures_in_a_row += 1
            limit = self.limits.dead_after if not state.answered else self.limits.dead_after * 4
            if state.failures_in_a_row >= limit and not state.dead:
                state.dead = True
                log.warning("giving up %s:%d after %d failed queries", *server, limit)

    async def with_retries(
        self, state: ServerState, server: Server, text: str, rdtype: str, attempt: Attempt
    ) -> Answer:
        """Run ``attempt`` until it comes to an outcome, paced, with backoff between tries.

        Both query paths share this loop so that they count queries and timeouts, and stop
        for a server given up meanwhile, by the same rule.
        """
        tries = 0
        for tried in range(self.limits.retries + 1):
            if state.dead:
                break
            if tried:
                await asyncio.sleep(self.limits.backoff * 2 ** (tried - 1))
            await state.pace()
            state.queries += 1
            tries += 1
            answer = await attempt()
            if answer is not None:
                answer.tries, answer.timeouts = tries, tries - 1
                return answer
            state.timeouts += 1
        return Answer(server, text, rdtype, Rcode.TIMEOUT, error="timed out", tries=tries,
                      timeouts=tries)

    async def dnspython_try(
        self, server: Server, request: dns.message.Message, text: str, rdtype: str,
        *, tcp: bool = False,
    ) -> Answer | None:
        """One try through dnspython, UDP (TCP if truncated, or ``tcp``); None if it timed out."""
        try:
            response = None if tcp else await dns.asyncquery.udp(
                request, server[0], timeout=self.limits.timeout, port=server[1],
                ignore_unexpected=True,
            )
            if response is None or response.flags & dns.flags.TC:
                response = await dns.asyncquery.tcp(
                    request, server[0], timeout=self.limits.timeout, port=server[1]
                )
        except dns.exception.Timeout:
            return None
        except (OSError, dns.exception.DNSException, EOFError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            return Answer(server, text, rdtype, Rcode.ERROR, error=error)
        return Answer(server, text, rdtype, classify(response), response)


def wire_of(response: dns.message.Message | None) -> bytes | None:
    """A reply's wire form, to keep it (None if there was none, or it cannot be written)."""
    if response is None:
        return None
    try:
        return response.to_wire()
    except Exception:  # an odd reply is then asked again on resume, no more
        log.debug("a reply that cannot be written back", exc_info=True)
        return None


@functools.cache
def _sweep_path() -> ModuleType:
    """:mod:`.sweep`, imported once at first use: it is built on this module's outcomes, so it
    cannot be imported at the top, and an import per query costs the fast path ≈ 1 µs."""
    from . import sweep

    return sweep


@functools.cache
def _flight_module() -> ModuleType:
    """:mod:`.flight`, imported at first use for the same reason as :mod:`.sweep`."""
    from . import flight

    return flight


def make_request(
    name: str | dns.name.Name, rdtype: str, *, dnssec: bool, recurse: bool
) -> dns.message.Message:
    """The query both paths hand dnspython: EDNS0 at our payload, RD unless not ``recurse``."""
    request = dns.message.make_query(
        name, rdtype, use_edns=0, payload=EDNS_PAYLOAD, want_dnssec=dnssec
    )
    if not recurse:
        request.flags &= ~dns.flags.RD
    return request


def classify(response: dns.message.Message) -> Rcode:
    """The outcome a response stands for; NOERROR with no answer is NODATA."""
    rcode = response.rcode()
    if rcode == dns.rcode.NOERROR:
        return Rcode.NOERROR if response.answer else Rcode.NODATA
    return {
        dns.rcode.NXDOMAIN: Rcode.NXDOMAIN,
        dns.rcode.REFUSED: Rcode.REFUSED,
        dns.rcode.SERVFAIL: Rcode.SERVFAIL,
    }.get(rcode, Rcode.ERROR)


async def bounded(
    items: Iterable[T], work: Callable[[T], Awaitable[R]], workers: int
) -> AsyncIterator[tuple[T, R]]:
    """Run ``work`` over ``items`` with at most ``workers`` at once, yielding as they finish.

    Items are pulled lazily, so a wordlist of a million labels never becomes a million tasks.
    """
    iterator = iter(items)
    pending: dict[asyncio.Task[R], T] = {}

    def refill() -> None:
        while len(pending) < workers:
            try:
                item = next(iterator)
            except StopIteration:
                return
            pending[asyncio.ensure_future(work(item))] = item

    refill()
    try:
        while pending:
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                item = pending.pop(task)
                yield item, task.result()
            refill()
    finally:
        for task in pending:
            task.cancel()
