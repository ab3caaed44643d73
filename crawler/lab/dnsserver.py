"""The lab's DNS: every authoritative server of a world, and its resolver, on loopback.

One asyncio loop in a background thread serves UDP and TCP on every server address and on
the resolver address.  ``answer()`` turns query bytes into response bytes with no socket,
so the protocol is tested apart from the I/O; the faults of ``ServerSpec`` are applied here.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import socket
import struct
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import Self, cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.renderer
import dns.rrset

from .world import LabError, Lookup, ServerSpec, World

log = logging.getLogger(__name__)

UDP_DEFAULT = 512
UDP_MAX = 4096
AXFR_MESSAGE_SIZE = 16384
TCP_IDLE_TIMEOUT = 30.0
_XFR_TYPES = (dns.rdatatype.AXFR, dns.rdatatype.IXFR)


def _formerr(wire: bytes) -> bytes | None:
    """FORMERR for a packet dnspython cannot parse; nothing for runts and responses."""
    if len(wire) < 12 or wire[2] & 0x80:
        return None
    flags = 0x8000 | (wire[2] & 0x79) << 8 | dns.rcode.FORMERR
    return wire[:2] + struct.pack("!HHHHH", flags, 0, 0, 0, 0)


class Responder:
    """The answers of one address: an authoritative server (``spec``) or the resolver."""

    def __init__(self, world: World, spec: ServerSpec | None) -> None:
        self.world = world
        self.spec = spec
        self.origins = {dns.name.from_text(z) for z in spec.zones} if spec else set()
        self._xfr_cache: dict[dns.name.Name, list[dns.rrset.RRset]] = {}

    def answer(self, wire: bytes, tcp: bool) -> list[bytes]:
        """Response messages for one query (several for AXFR); empty to stay silent."""
        fast = self._fast(wire, tcp)
        if fast is not None:
            return [fast]
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            reply = _formerr(wire)
            return [reply] if reply else []
        except Exception:  # dnspython may raise others on hostile bytes; never crash
            log.debug("unparsable packet", exc_info=True)
            reply = _formerr(wire)
            return [reply] if reply else []
        if query.flags & dns.flags.QR:
            return []
        response = dns.message.make_response(
            query, recursion_available=self.spec is None, our_payload=1232
        )
        if query.opcode() != dns.opcode.QUERY:
            response.set_rcode(dns.rcode.NOTIMP)
            return [response.to_wire()]
        if len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return [response.to_wire()]
        question = query.question[0]
        spec = self.spec
        if spec is not None and (spec.servfail or spec.lame):
            response.set_rcode(dns.rcode.SERVFAIL if spec.servfail else dns.rcode.REFUSED)
            return [response.to_wire()]
        if question.rdtype in _XFR_TYPES:
            return self._transfer(query, response, tcp)
        if spec is None:
            lookup = self.world.recursive(question.name, question.rdtype)
        else:
            found = self.world.authoritative(question.name, question.rdtype, self.origins)
            if found is None:
                response.set_rcode(dns.rcode.REFUSED)
                return [response.to_wire()]
            lookup = found
        self._fill(response, lookup)
        return [self._render(query, response, tcp)]

    def _fast(self, wire: bytes, tcp: bool) -> bytes | None:
        """The answer to a plain query read without dnspython's parser (most of the cost of
        a wordlist sweep); None sends anything unusual down the full path."""
        spec = self.spec
        if len(wire) < 17 or (spec is not None and (spec.servfail or spec.lame or spec.truncate)):
            return None
        ident, flags, qdcount, ancount, nscount, arcount = struct.unpack_from("!6H", wire)
        if flags & 0xF800 or qdcount != 1 or ancount or nscount or arcount > 1:
            return None
        labels: list[bytes] = []
        at = 12
        while (length := wire[at]) != 0:
            if length > 63 or at + length + 1 >= len(wire):
                return None
            labels.append(wire[at + 1 : at + 1 + length])
            at += length + 1
        at += 1
        if at + 4 > len(wire):
            return None
        rdtype, rdclass = struct.unpack_from("!HH", wire, at)
        at += 4
        question_end = at
        payload = None
        if arcount:
            # Only a bare OPT record: root owner, type 41, version 0, no options.
            if wire[at : at + 3] != b"\x00\x00\x29" or len(wire) != at + 11:
                return None
            payload, _, version = struct.unpack_from("!HBB", wire, at + 3)
            if version != 0:
                return None
        elif len(wire) != at:
            return None
        if rdclass != 1 or rdtype in _XFR_TYPES or rdtype == dns.rdatatype.OPT:
            return None
        try:
            qname = dns.name.Name([*labels, b""])
        except dns.exception.DNSException:
            return None
        if spec is None:
            lookup = self.world.recursive(qname, rdtype)
        else:
            found = self.world.authoritative(qname, rdtype, self.origins)
            if found is None:
                return None
            lookup = found
        out_flags = dns.flags.QR | (flags & dns.flags.RD) | lookup.rcode
        if lookup.aa:
            out_flags |= dns.flags.AA
        if spec is None:
            out_flags |= dns.flags.RA
        if tcp:
            limit = 65535
        elif payload is not None:
            limit = max(UDP_DEFAULT, min(payload, UDP_MAX))
        else:
            limit = UDP_DEFAULT
        if lookup.negative_wire is not None and not lookup.answer:
            # Header, the question as asked, the zone's prebuilt SOA, and OPT if asked.
            opt = b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00" if payload is not None else b""
            header = struct.pack("!6H", ident, out_flags, 1, 0, 1, 1 if opt else 0)
            return header + wire[12:question_end] + lookup.negative_wire + opt
        renderer = dns.renderer.Renderer(ident, out_flags, limit)
        try:
            renderer.add_question(qname, rdtype, rdclass)
            for section, rrsets in (
                (dns.renderer.ANSWER, lookup.answer),
                (dns.renderer.AUTHORITY, lookup.authority),
                (dns.renderer.ADDITIONAL, lookup.additional),
            ):
                for rrset in rrsets:
                    renderer.add_rrset(section, rrset)
            if payload is not None:
                renderer.add_edns(0, 0, 1232)
        except dns.exception.TooBig:
            return None
        renderer.write_header()
        return renderer.get_wire()

    @staticmethod
    def _fill(response: dns.message.Message, lookup: Lookup) -> None:
        response.set_rcode(lookup.rcode)
        if lookup.aa:
            response.flags |= dns.flags.AA
        response.answer = list(lookup.answer)
        response.authority = list(lookup.authority)
        response.additional = list(lookup.additional)

    def _render(
        self, query: dns.message.Message, response: dns.message.Message, tcp: bool
    ) -> bytes:
        """The response bytes, truncated with TC if they do not fit the UDP payload."""
        if tcp:
            return response.to_wire(max_size=65535)
        if self.spec is not None and self.spec.truncate:
            limit = 0
        elif query.edns >= 0:
            limit = max(UDP_DEFAULT, min(query.payload, UDP_MAX))
        else:
            limit = UDP_DEFAULT
        if limit:
            try:
                return response.to_wire(max_size=limit)
            except dns.exception.TooBig:
                pass
        response.answer, response.authority, response.additional = [], [], []
        response.flags |= dns.flags.TC
        return response.to_wire()

    def _transfer(
        self, query: dns.message.Message, response: dns.message.Message, tcp: bool
    ) -> list[bytes]:
        """AXFR (IXFR gets a full AXFR-style answer): TCP only, where ``axfr`` is on."""
        spec = self.spec
        origin = query.question[0].name
        if not tcp or spec is None or not spec.axfr or origin not in self.origins:
            response.set_rcode(dns.rcode.REFUSED)
            return [response.to_wire()]
        rrsets = self._zone_rrsets(origin)
        if spec.halfway_axfr or spec.garbage_axfr:
            # Cut by record, not rrset, so even a tiny zone stops after some records.
            records = [
                dns.rrset.from_rdata_list(rrset.name, rrset.ttl, [rdata])
                for rrset in rrsets[:-1]
                for rdata in rrset
            ]
            rrsets = records[: max(1, len(records) // 2)]
        messages = self._xfr_messages(query, rrsets)
        if spec.garbage_axfr:
            messages.append(bytes(query.id.to_bytes(2, "big")) + b"\x84\x00\xff\xff" * 40)
        return messages

    def _zone_rrsets(self, origin: dns.name.Name) -> list[dns.rrset.RRset]:
        cached = self._xfr_cache.get(origin)
        if cached is None:
            zone = self.world.zones[origin.to_text(omit_final_dot=True).lower()]
            soa = zone.find_rrset(zone.origin, dns.rdatatype.SOA)
            rest = [
                dns.rrset.from_rdata_list(name, rds.ttl, list(rds))
                for name, node in sorted(zone.nodes.items())
                for rds in node.rdatasets
                if not (name == zone.origin and rds.rdtype == dns.rdatatype.SOA)
            ]
            cached = self._xfr_cache[origin] = [soa, *rest, soa]
        return cached

    @staticmethod
    def _xfr_messages(query: dns.message.Message, rrsets: list[dns.rrset.RRset]) -> list[bytes]:
        """Pack the rrsets into as few messages of at most 16 KB as fit (RFC 5936)."""
        flags = dns.flags.QR | dns.flags.AA
        messages: list[bytes] = []
        pending = list(rrsets)
        while pending:
            renderer = dns.renderer.Renderer(query.id, flags, AXFR_MESSAGE_SIZE)
            if not messages:
                question = query.question[0]
                renderer.add_question(question.name, question.rdtype, question.rdclass)
            added = 0
            for rrset in pending:
                try:
                    renderer.add_rrset(dns.renderer.ANSWER, rrset)
                except dns.exception.TooBig:
                    break
                added += 1
            if added == 0:
                raise LabError(f"an rrset of {rrset.name} does not fit in one AXFR message")
            pending = pending[added:]
            renderer.write_header()
            messages.append(renderer.get_wire())
        return messages


class _UDP(asyncio.DatagramProtocol):
    def __init__(self, server: LabDNS, responder: Responder) -> None:
        self.server = server
        self.responder = responder
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        spec = self.responder.spec
        self.server.counts[spec.address if spec else "resolver"] += 1
        self.server.types[_qtype(data) or 0] += 1
        self.server.questions[_question(data)] += 1
        if spec is not None and spec.loss and random.random() < spec.loss:
            return
        try:
            replies = self.responder.answer(data, tcp=False)
        except Exception:
            log.exception("lab DNS failed on a UDP query")
            return
        transport = self.transport
        assert transport is not None
        for reply in replies:
            if spec is not None and spec.latency:
                asyncio.get_running_loop().call_later(spec.latency, transport.sendto, reply, addr)
            else:
                transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP error: %s", exc)


class LabDNS:
    """The world's DNS on ``port`` of every server address and of the resolver address.

    Example::

        with LabDNS(load_world("kp"), free_port(world.addresses())) as lab:
            dns.query.udp(query, "127.45.176.15", port=lab.port)
    """

    def __init__(self, world: World, port: int) -> None:
        self.world = world
        self.port = port
        self.counts: collections.Counter[str] = collections.Counter()
        self.types: collections.Counter[int] = collections.Counter()
        """Queries received per query type (a test sees which phases of a probe ran)."""
        self.questions: collections.Counter[tuple[str, int]] = collections.Counter()
        """Queries received per question, ``(name in lower case, type)``: the lab's query
        log (a test sees that a resumed probe does not ask a settled question again)."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closers: list[asyncio.BaseTransport | asyncio.Server] = []

    @property
    def resolver(self) -> tuple[str, int]:
        """The resolver's address and port, as ``--resolver`` wants them."""
        return (self.world.resolver_address, self.port)

    def _bindings(self) -> list[tuple[str, Responder]]:
        pairs = [(s.address, Responder(self.world, s)) for s in self.world.servers]
        pairs.append((self.world.resolver_address, Responder(self.world, None)))
        return pairs

    async def _serve_tcp(
        self, responder: Responder, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        spec = responder.spec
        try:
            while True:
                header = await asyncio.wait_for(reader.readexactly(2), TCP_IDLE_TIMEOUT)
                wire = await reader.readexactly(struct.unpack("!H", header)[0])
                self.counts[spec.address if spec else "resolver"] += 1
                self.types[_qtype(wire) or 0] += 1
                self.questions[_question(wire)] += 1
                replies = responder.answer(wire, tcp=True)
                if spec is not None and spec.latency:
                    await asyncio.sleep(spec.latency)
                for reply in replies:
                    writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
                transfer = len(replies) > 0 and _qtype(wire) in _XFR_TYPES
                if spec is not None and transfer and (spec.halfway_axfr or spec.garbage_axfr):
                    break
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        except asyncio.CancelledError:
            # Only stop() cancels these; ending quietly keeps shutdown free of tracebacks.
            pass
        except Exception:
            log.exception("lab DNS failed on a TCP query")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        for address, responder in self._bindings():
            try:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda r=responder: _UDP(self, r), local_addr=(address, self.port)
                )
                self._closers.append(transport)
                server = await asyncio.start_server(
                    lambda rd, wr, r=responder: self._serve_tcp(r, rd, wr),
                    address, self.port, reuse_address=True, backlog=128,
                )
                self._closers.append(server)
            except OSError as exc:
                raise LabError(f"cannot serve DNS on {address}:{self.port}: {exc}") from None

    def start(self) -> Self:
        """Bind every address and serve in a background thread; LabError if a bind fails."""
        if self._thread is not None:
            return self
        loop = asyncio.new_event_loop()
        ready: threading.Event = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._start())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                self._close_all()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            self._close_all()
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name=f"lab-dns-{self.port}", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = self._loop = None
            raise failure[0]
        log.info("lab DNS of world %s on port %d", self.world.name, self.port)
        return self

    def _close_all(self) -> None:
        for closer in self._closers:
            closer.close()
        self._closers.clear()

    def stop(self) -> None:
        """Stop serving and release every socket."""
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._thread = self._loop = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _qtype(wire: bytes) -> int | None:
    """The type of a query's first question, read from the bytes (None if unreadable)."""
    at = 12
    try:
        while wire[at]:
            at += wire[at] + 1
        return int(struct.unpack_from("!H", wire, at + 1)[0])
    except (IndexError, struct.error):
        return None


def _question(wire: bytes) -> tuple[str, int]:
    """A query's first question as ``(name in lower case without the final dot, type)``."""
    at, labels = 12, []
    try:
        while wire[at]:
            labels.append(wire[at + 1:at + 1 + wire[at]].decode("ascii", "replace").lower())
            at += wire[at] + 1
        return ".".join(labels), int(struct.unpack_from("!H", wire, at + 1)[0])
    except (IndexError, struct.error):
        return "", 0


def free_port(addresses: Iterable[str], attempts: int = 50) -> int:
    """A port free for UDP and TCP on every address (random in 20000-60000)."""
    addresses = list(addresses)
    for _ in range(attempts):
        port = random.randint(20000, 60000)
        sockets: list[socket.socket] = []
        try:
            for address in addresses:
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    sock = socket.socket(socket.AF_INET, kind)
                    sockets.append(sock)
                    if kind == socket.SOCK_STREAM:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    sock.bind((address, port))
            return port
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise LabError(f"no free port for {len(addresses)} addresses after {attempts} attempts")
