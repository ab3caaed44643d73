"""Queries for the denial walks, read from the wire: only the NSEC / NSEC3 records are parsed.

A signed answer is mostly RRSIGs; dnspython builds a ``Message`` with every one of them, which
is most of the cost of a walk step (≈ 1 ms against Knot on loopback).  A walk needs only the
NSEC or NSEC3 records of the answer and authority sections, so :func:`denial_records` skips
every other record by its length and hands just those to ``dns.rdata.from_wire``.

:class:`DenialAsker` sends on one connected UDP socket per server, under the engine's limits,
retries and give-up rule (``Engine.with_retries`` / ``Engine.account``); a truncated reply is
asked again over TCP through dnspython.  One walk, one asker: a query is answered before the
next is sent, so the socket needs no table of queries in flight.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import struct
import time
from typing import Any

import dns.exception
import dns.flags
import dns.name
import dns.rdata
import dns.rdatatype

from .engine import (
    EDNS_PAYLOAD,
    Answer,
    Engine,
    Rcode,
    Server,
    classify,
    make_request,
    wire_of,
)

DenialRecord = tuple[dns.name.Name, int, Any]
"""Owner, type (NSEC or NSEC3) and rdata of one record of a reply."""

_WANTED = frozenset({dns.rdatatype.NSEC, dns.rdatatype.NSEC3})
_RCODES = {0: Rcode.NOERROR, 2: Rcode.SERVFAIL, 3: Rcode.NXDOMAIN, 5: Rcode.REFUSED}
_OPT_DO = b"\0" + struct.pack("!HHIH", dns.rdatatype.OPT, EDNS_PAYLOAD, 0x8000, 0)


def denial_records(wire: bytes) -> tuple[Rcode, bool, list[DenialRecord]]:
    """The rcode, the TC flag and the NSEC / NSEC3 records of a reply's answer and authority.

    Raises ``ValueError`` on a reply that is not a well-formed DNS message.
    """
    if len(wire) < 12 or not wire[2] & 0x80:
        raise ValueError("not a DNS reply")
    qdcount, ancount, nscount = struct.unpack_from("!HHH", wire, 4)
    truncated = bool(wire[2] & (dns.flags.TC >> 8))
    rcode = _RCODES.get(wire[3] & 0x0F, Rcode.ERROR)
    found: list[DenialRecord] = []
    try:
        pos = 12
        for _ in range(qdcount):
            pos = _skip_name(wire, pos) + 4
        for _ in range(ancount + nscount):
            at = pos
            pos = _skip_name(wire, pos)
            rdtype, rdclass, _ttl, length = struct.unpack_from("!HHIH", wire, pos)
            pos += 10
            if pos + length > len(wire):
                raise ValueError("record runs past the message")
            if rdtype in _WANTED:
                owner = dns.name.from_wire(wire, at)[0]
                found.append((owner, rdtype, dns.rdata.from_wire(rdclass, rdtype, wire, pos,
                                                                  length)))
            pos += length
    except (dns.exception.DNSException, struct.error, IndexError) as exc:
        raise ValueError(f"{type(exc).__name__}: {exc}") from None
    if rcode == Rcode.NOERROR and not ancount:
        rcode = Rcode.NODATA
    return rcode, truncated, found


def _skip_name(wire: bytes, pos: int) -> int:
    """The offset after the name at ``pos`` (labels, then a zero octet or a pointer); only
    the names of the records kept are decoded, by dnspython, which checks them."""
    while True:
        length = wire[pos]
        if length == 0:
            return pos + 1
        if length >= 0xC0:
            return pos + 2
        if length > 63:
            raise ValueError("bad label length")
        pos += length + 1


class DenialAsker:
    """Non-recursive DO queries whose replies yield their NSEC / NSEC3 records."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sockets: dict[Server, socket.socket] = {}

    def close(self) -> None:
        for sock in self.sockets.values():
            sock.close()
        self.sockets.clear()

    def _socket(self, server: Server) -> socket.socket:
        sock = self.sockets.get(server)
        if sock is None:
            family = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setblocking(False)
            sock.connect(server)
            self.sockets[server] = sock
        return sock

    async def _exchange(self, server: Server, query: bytes) -> bytes | None:
        """Send one try, return the reply with its ID; None when it timed out."""
        loop = asyncio.get_running_loop()
        sock = self._socket(server)
        deadline = time.monotonic() + self.engine.limits.timeout
        try:
            await loop.sock_sendall(sock, query)
            while (left := deadline - time.monotonic()) > 0:
                reply = await asyncio.wait_for(loop.sock_recv(sock, 65535), left)
                if reply[:2] == query[:2] and len(reply) >= 12:
                    return reply
        except (TimeoutError, ConnectionRefusedError):
            return None
        return None

    async def ask(self, server: Server, name: dns.name.Name, rdtype: str
                  ) -> tuple[Answer, list[DenialRecord]]:
        """One query under the engine's rules; the outcome and the denial records."""
        engine = self.engine
        text = name.to_text(omit_final_dot=True)
        state = engine.state(server)
        if state.dead:
            return Answer(server, text, rdtype, Rcode.TIMEOUT, error="server given up"), []
        answers = engine.answers
        flags = 1 | 4  # DNSSEC OK, no recursion, read from the wire (its own answers)
        if answers is not None:
            kept = engine.recall(state, server, text, rdtype, flags)
            if kept is not None:
                return self._read_back(kept.answer(server, text, rdtype), kept.wire)
        code = dns.rdatatype.from_text(rdtype)
        wire_name = name.to_wire()
        assert wire_name is not None
        query = (secrets.randbelow(1 << 16).to_bytes(2) + struct.pack("!HHHHH", 0, 1, 0, 0, 1)
                 + wire_name + struct.pack("!HH", code, 1) + _OPT_DO)
        records: list[DenialRecord] = []
        wire: list[bytes] = []

        async def attempt() -> Answer | None:
            reply = await self._exchange(server, query)
            if reply is None:
                return None
            wire[:] = [reply]
            try:
                rcode, truncated, found = denial_records(reply)
            except ValueError as exc:
                return Answer(server, text, rdtype, Rcode.ERROR, error=str(exc))
            if truncated:
                request = make_request(name, rdtype, dnssec=True, recurse=False)
                answer = await engine.dnspython_try(server, request, text, rdtype, tcp=True)
                if answer is not None and answer.response is not None:
                    response = answer.response
                    records[:] = [(r.name, r.rdtype, rd) for r in response.answer
                                  + response.authority if r.rdtype in _WANTED for rd in r]
                    answer.rcode = classify(response)
                return answer
            records[:] = found
            return Answer(server, text, rdtype, rcode, replied=True)

        async with state.semaphore:
            answer = await engine.with_retries(state, server, text, rdtype, attempt)
        engine.account(state, server, answer)
        if answers is not None:
            if answer.response is not None:
                answers.keep(answer, flags, wire_of(answer.response))
            else:
                answers.keep(answer, flags, wire[0] if answer.replied else None)
        return answer, records

    @staticmethod
    def _read_back(answer: Answer, wire: bytes | None) -> tuple[Answer, list[DenialRecord]]:
        """A kept answer with its denial records, read again from the reply kept."""
        if answer.response is not None:
            response = answer.response
            return answer, [(r.name, r.rdtype, rd) for r in response.answer
                            + response.authority if r.rdtype in _WANTED for rd in r]
        if answer.replied and wire is not None:
            return answer, denial_records(wire)[2]
        return answer, []

    async def first(self, servers: list[Server], name: dns.name.Name, rdtype: str
                    ) -> tuple[Answer, list[DenialRecord]] | None:
        """The first of ``servers`` that answers (not REFUSED nor SERVFAIL), in order."""
        for server in servers:
            answer, records = await self.ask(server, name, rdtype)
            if answer.answered and answer.rcode not in (Rcode.REFUSED, Rcode.SERVFAIL,
                                                        Rcode.ERROR):
                return answer, records
        return None
