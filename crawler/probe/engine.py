"""A small, polite asynchronous DNS client on dnspython.

National infrastructure can be a couple of servers on a thin link, so every server gets its own
limit on queries in flight (a semaphore) and per second (a paced bucket).  Outcomes -- NXDOMAIN,
REFUSED, a timeout -- are values (:class:`Rcode`), never exceptions: they are what the census
records.  A server that fails ``dead_after`` queries in a row (each after all its retries) and
never answered is given up for the rest of the run, so a dead resolver costs one wave of
timeouts, not one per query.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from .sweep import Channel, as_message, header_rcode, query_body, question_bytes

log = logging.getLogger(__name__)

Server = tuple[str, int]
T = TypeVar("T")
R = TypeVar("R")

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
        request = dns.message.make_query(
            name, rdtype, use_edns=0, payload=EDNS_PAYLOAD, want_dnssec=dnssec
        )
        if not recurse:
            request.flags &= ~dns.flags.RD
        async with state.semaphore:
            answer = await self._try(state, server, request, text, rdtype)
        self._account(state, server, answer)
        return answer

    def _account(self, state: ServerState, server: Server, answer: Answer) -> None:
        """Count the outcome; give the server up at ``dead_after`` failures in a row."""
        if answer.answered:
            state.answered += 1
            state.failures_in_a_row = 0
        else:
            state.failures_in_a_row += 1
            limit = self.limits.dead_after if not state.answered else self.limits.dead_after * 4
            if state.failures_in_a_row >= limit and not state.dead:
                state.dead = True
                log.warning("giving up %s:%d after %d failed queries", *server, limit)

    async def sweep(
        self, server: Server, qname: str, rdtype: str, *, dnssec: bool = False,
        recurse: bool = True,
    ) -> Answer:
        """:meth:`query` on the fast path of big sweeps (:mod:`.sweep`), same outcomes.

        Answers without records are classified from the header and carry no ``response``.
        """
        text = qname[:-1] if qname.endswith(".") else qname
        state = self.state(server)
        if state.dead:
            return Answer(server, text, rdtype, Rcode.TIMEOUT, error="server given up")
        question = question_bytes(qname, rdtype)
        body = query_body(question, recurse=recurse, dnssec=dnssec, payload=EDNS_PAYLOAD)
        async with state.semaphore:
            channel = await self._channel(server)
            query_id = channel.register()
            try:
                answer = await self._sweep_try(
                    state, server, channel, query_id, question, body, text, rdtype,
                    dnssec=dnssec, recurse=recurse,
                )
            finally:
                channel.release(query_id)
        self._account(state, server, answer)
        return answer

    async def _channel(self, server: Server) -> Channel:
        loop = asyncio.get_running_loop()
        held = self.channels.get(server)
        if held is None or held[0] is not loop:
            held = self.channels[server] = (loop, asyncio.ensure_future(Channel.open(server)))
        return await held[1]

    @contextlib.contextmanager
    def sweeping(self) -> Iterator[None]:
        """Close the sweep sockets when the sweep ends, however it ends."""
        try:
            yield
        finally:
            for _, opening in self.channels.values():
                if opening.done() and not opening.cancelled() and opening.exception() is None:
                    opening.result().close()
            self.channels.clear()

    async def _sweep_try(
        self, state: ServerState, server: Server, channel: Channel, query_id: int,
        question: bytes, body: bytes, text: str, rdtype: str, *, dnssec: bool,
        recurse: bool,
    ) -> Answer:
        error = "timed out"
        for attempt in range(self.limits.retries + 1):
            if state.dead:
                break
            if attempt:
                await asyncio.sleep(self.limits.backoff * 2 ** (attempt - 1))
            await state.pace()
            state.queries += 1
            try:
                reply = await channel.ask(query_id, question, body, self.limits.timeout)
            except TimeoutError:
                state.timeouts += 1
                continue
            rcode, ancount, truncated = header_rcode(reply)
            if not truncated:
                if ancount == 0 and rcode in HEADER_ONLY:
                    return Answer(server, text, rdtype, HEADER_ONLY[rcode], replied=True)
                try:
                    response = as_message(reply)
                except (dns.exception.DNSException, ValueError, IndexError) as exc:
                    error = f"{type(exc).__name__}: {exc}"
                    return Answer(server, text, rdtype, Rcode.ERROR, error=error)
                return Answer(server, text, rdtype, classify(response), response)
            request = dns.message.make_query(
                text, rdtype, use_edns=0, payload=EDNS_PAYLOAD, want_dnssec=dnssec
            )
            if not recurse:
                request.flags &= ~dns.flags.RD
            try:
                response = await dns.asyncquery.tcp(
                    request, server[0], timeout=self.limits.timeout, port=server[1]
                )
            except dns.exception.Timeout:
                state.timeouts += 1
                continue
            except (OSError, dns.exception.DNSException, EOFError) as exc:
                error = f"{type(exc).__name__}: {exc}"
                return Answer(server, text, rdtype, Rcode.ERROR, error=error)
            return Answer(server, text, rdtype, classify(response), response)
        return Answer(server, text, rdtype, Rcode.TIMEOUT, error=error)

    async def _try(
        self, state: ServerState, server: Server, request: dns.message.Message, text: str,
        rdtype: str,
    ) -> Answer:
        error = "timed out"
        for attempt in range(self.limits.retries + 1):
            if state.dead:
                break
            if attempt:
                await asyncio.sleep(self.limits.backoff * 2 ** (attempt - 1))
            await state.pace()
            state.queries += 1
            try:
                response = await dns.asyncquery.udp(
                    request, server[0], timeout=self.limits.timeout, port=server[1],
                    ignore_unexpected=True,
                )
                if response.flags & dns.flags.TC:
                    response = await dns.asyncquery.tcp(
                        request, server[0], timeout=self.limits.timeout, port=server[1]
                    )
            except dns.exception.Timeout:
                state.timeouts += 1
                error = "timed out"
                continue
            except (OSError, dns.exception.DNSException, EOFError) as exc:
                error = f"{type(exc).__name__}: {exc}"
                return Answer(server, text, rdtype, Rcode.ERROR, error=error)
            return Answer(server, text, rdtype, classify(response), response)
        return Answer(server, text, rdtype, Rcode.TIMEOUT, error=error)


HEADER_ONLY = {
    dns.rcode.NOERROR: Rcode.NODATA,
    dns.rcode.NXDOMAIN: Rcode.NXDOMAIN,
    dns.rcode.REFUSED: Rcode.REFUSED,
    dns.rcode.SERVFAIL: Rcode.SERVFAIL,
}
"""What a reply with no answer records means, read from its header (extended rcodes, which
need an OPT we never ask for, are not looked at)."""


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
