"""The fast path of big sweeps: one connected UDP socket per server, queries as prebuilt bytes.

A wordlist or PTR sweep asks tens of thousands of names and keeps few: dnspython's ≈ 150 µs
to build and parse each message (plus a socket per query) caps it at ≈ 3k queries a second.
Here a query is its question bytes built once, with only the ID written per send; replies are
matched by ID *and* question on one connected socket (the kernel drops datagrams from other
addresses, a wrong ID or question is ignored as spoofed or late), and classified from the
header: a reply with no answer records (NXDOMAIN, REFUSED, SERVFAIL, NODATA) never meets
dnspython; only replies that carry answers are parsed, since the sweeps keep those.

Limits, retries, timeouts, pacing and the give-up rule are the engine's own: :func:`sweep_query`
(which :meth:`.engine.Engine.sweep` calls) hands each try to the engine's one retry loop, and
truncated replies go to the engine's dnspython TCP path, as always.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import struct

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype

from .engine import EDNS_PAYLOAD, Answer, Engine, Rcode, Server, classify, make_request

log = logging.getLogger(__name__)

RECEIVE_BUFFER = 1 << 20
"""Our socket's buffer: a window of replies arriving together must not overflow it."""
_FLAGS_RD = 0x0100
_HEADER_TAIL = struct.pack("!HHHH", 1, 0, 0, 1)

HEADER_ONLY = {
    dns.rcode.NOERROR: Rcode.NODATA,
    dns.rcode.NXDOMAIN: Rcode.NXDOMAIN,
    dns.rcode.REFUSED: Rcode.REFUSED,
    dns.rcode.SERVFAIL: Rcode.SERVFAIL,
}
"""What a reply with no answer records means, read from its header (extended rcodes, which
need an OPT we never ask for, are not looked at)."""


def question_bytes(qname: str, rdtype: str) -> bytes:
    """The question section of ``qname``/``rdtype`` class IN, as the server echoes it."""
    code = dns.rdatatype.from_text(rdtype)
    labels = qname.rstrip(".").split(".")
    if all(0 < len(label) < 64 and label.isascii() and "\\" not in label for label in labels):
        encoded = b"".join(bytes([len(label)]) + label.encode() for label in labels) + b"\0"
    else:
        encoded = dns.name.from_text(qname).to_wire()
    return encoded + struct.pack("!HH", code, 1)


def opt_record(payload: int, dnssec: bool) -> bytes:
    """The EDNS0 OPT record dnspython's ``make_query(use_edns=0, ...)`` puts in a query."""
    return b"\0" + struct.pack("!HHIH", 41, payload, 0x8000 if dnssec else 0, 0)


class Channel(asyncio.DatagramProtocol):
    """One server's connected UDP socket and the queries waiting on it, by ID."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.waiting: dict[int, tuple[bytes, asyncio.Future[bytes]]] = {}
        self.ignored = 0
        """Datagrams that matched no query in flight (wrong ID, wrong question, late)."""

    @classmethod
    async def open(cls, server: tuple[str, int]) -> Channel:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET6 if ":" in server[0] else socket.AF_INET,
                             socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        sock.setblocking(False)
        sock.connect(server)
        _, channel = await loop.create_datagram_endpoint(cls, sock=sock)
        return channel

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: object) -> None:
        entry = self.waiting.get(int.from_bytes(data[:2])) if len(data) >= 12 else None
        if entry is None:
            self.ignored += 1
            return
        question, future = entry
        end = 12 + len(question)
        same = data[12:end] == question or data[12:end].lower() == question.lower()
        if not (data[2] & 0x80) or data[4:6] != b"\0\1" or not same or future.done():
            self.ignored += 1
            return
        future.set_result(data)

    def error_received(self, exc: Exception) -> None:
        # an ICMP error (port unreachable) is no answer: the query times out as on any path
        log.debug("UDP error from a sweep server: %s", exc)

    def register(self) -> int:
        """A random ID no query in flight on this socket holds."""
        query_id = secrets.randbelow(1 << 16)
        while query_id in self.waiting:
            query_id = secrets.randbelow(1 << 16)
        return query_id

    async def ask(self, query_id: int, question: bytes, body: bytes, timeout: float) -> bytes:
        """Send one try and wait for its reply; ``TimeoutError`` after ``timeout`` seconds.

        A try's future replaces the last one under the same ID, so a late reply to an earlier
        try still counts, as with dnspython's retries of the same message.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes] = loop.create_future()
        self.waiting[query_id] = (question, future)
        timer = loop.call_later(timeout, _expire, future)
        assert self.transport is not None
        self.transport.sendto(query_id.to_bytes(2) + body)
        try:
            return await future
        finally:
            timer.cancel()

    def release(self, query_id: int) -> None:
        self.waiting.pop(query_id, None)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        for _, future in self.waiting.values():
            future.cancel()
        self.waiting.clear()


def _expire(future: asyncio.Future[bytes]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


def query_body(question: bytes, *, recurse: bool, dnssec: bool, payload: int) -> bytes:
    """Everything of the query after its ID: flags, counts, question, OPT."""
    flags = _FLAGS_RD if recurse else 0
    return struct.pack("!H", flags) + _HEADER_TAIL + question + opt_record(payload, dnssec)


def header_rcode(reply: bytes) -> tuple[int, int, bool]:
    """The reply's rcode (header bits only), answer count and TC flag."""
    return reply[3] & 0x0F, int.from_bytes(reply[6:8]), bool(reply[2] & (dns.flags.TC >> 8))


def as_message(reply: bytes) -> dns.message.Message:
    return dns.message.from_wire(reply)


async def sweep_query(
    engine: Engine, server: Server, qname: str, rdtype: str, *, dnssec: bool, recurse: bool
) -> Answer:
    """:meth:`.engine.Engine.query` on this fast path: the engine's limits, retries, outcomes."""
    text = qname[:-1] if qname.endswith(".") else qname
    state = engine.state(server)
    if state.dead:
        return Answer(server, text, rdtype, Rcode.TIMEOUT, error="server given up")
    question = question_bytes(qname, rdtype)
    body = query_body(question, recurse=recurse, dnssec=dnssec, payload=EDNS_PAYLOAD)
    async with state.semaphore:
        channel = await channel_for(engine.channels, server)
        query_id = channel.register()

        async def attempt() -> Answer | None:
            try:
                reply = await channel.ask(query_id, question, body, engine.limits.timeout)
            except TimeoutError:
                return None
            answer = read_reply(reply, server, text, rdtype)
            if answer is not None:
                return answer
            request = make_request(text, rdtype, dnssec=dnssec, recurse=recurse)
            return await engine.dnspython_try(server, request, text, rdtype, tcp=True)

        try:
            answer = await engine.with_retries(state, server, text, rdtype, attempt)
        finally:
            channel.release(query_id)
    engine.account(state, server, answer)
    return answer


def read_reply(reply: bytes, server: Server, text: str, rdtype: str) -> Answer | None:
    """A reply's outcome, from its header when it has no answers, else parsed; None when it
    was truncated (it goes to TCP)."""
    rcode, ancount, truncated = header_rcode(reply)
    if truncated:
        return None
    if ancount == 0 and rcode in HEADER_ONLY:
        return Answer(server, text, rdtype, HEADER_ONLY[rcode], replied=True)
    try:
        response = as_message(reply)
    except (dns.exception.DNSException, ValueError, IndexError) as exc:
        return Answer(server, text, rdtype, Rcode.ERROR, error=f"{type(exc).__name__}: {exc}")
    return Answer(server, text, rdtype, classify(response), response)


Channels = dict[Server, tuple[asyncio.AbstractEventLoop, asyncio.Future[Channel]]]
"""The engine's sweep sockets, one per server, each opened in (and only valid for) one loop."""


async def channel_for(channels: Channels, server: Server) -> Channel:
    """The server's socket in the running loop, opened once however many queries ask at once."""
    loop = asyncio.get_running_loop()
    held = channels.get(server)
    if held is None or held[0] is not loop:
        held = channels[server] = (loop, asyncio.ensure_future(Channel.open(server)))
    return await held[1]


def close_channels(channels: Channels) -> None:
    """Close every socket that opened, and forget them all."""
    for _, opening in channels.values():
        if opening.done() and not opening.cancelled() and opening.exception() is None:
            opening.result().close()
    channels.clear()
