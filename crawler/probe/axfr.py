"""Zone transfers: drain the TCP stream into a spool, then parse and store it apart.

Real servers drop slow readers (Knot's ``tcp-io-timeout`` is 500 ms), and dnspython parses
about 13k records a second, so parsing while reading loses big zones midway.  :func:`drain`
only copies length-prefixed messages into a spool file, looking at each message's header and
tail just enough to see the end of the zone; :class:`AxfrParser` is then fed the spool message
by message (no socket, so faults are easy to test) and :func:`store_spool` streams the records
into ``dns_records`` in batches inside one transaction.

A transfer that turns out malformed or stopped halfway keeps nothing in ``dns_records``: the
transaction is rolled back and the attempt says why (outcome ``error``), with the number of
records read before the fault.  ``records`` counts every record of the zone once: the final
SOA, which repeats the first, is not counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import marshal
import multiprocessing
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import sqlite_utils

from ..errors import TransferError
from .options import Outcome
from .tsig import TsigKey, Verifier, rejection, signed_query, split_tsig
from .wire import _TYPE_TEXT, Labels, Unusual, WireRecord, read_answers, type_text

log = logging.getLogger(__name__)

BATCH = 20_000
PARALLEL_BYTES = 4_000_000
"""Spools at least this big are parsed by a forked child while this process writes rows."""
NS = dns.rdatatype.NS
_SOA_TAIL = struct.pack("!HH", dns.rdatatype.SOA, 1)


@dataclass
class Drained:
    """What came over the wire: an outcome if it already failed, else a spool to parse."""

    outcome: Outcome | None
    messages: int = 0
    size: int = 0
    error: str | None = None
    seconds: float = 0.0
    complete: bool = False
    request_mac: bytes = b""
    """The MAC of a TSIG-signed query: the first answer's signature covers it."""


Record = tuple[str, str, int, str]
"""``(name, type, ttl, value)``: a row of ``dns_records`` without its run and source."""


def _ends_with_soa(wire: bytes) -> bool:
    """Cheap test: does the last RR of this message look like an SOA (type, class IN, rdlen)?"""
    end = len(wire)
    pos = wire.rfind(_SOA_TAIL, max(12, end - 1100))
    while pos >= 12:
        if pos + 10 <= end and pos + 10 + struct.unpack_from("!H", wire, pos + 8)[0] == end:
            return True
        pos = wire.rfind(_SOA_TAIL, max(12, end - 1100), pos)
    return False


def _last_is_soa(wire: bytes, count_needed: int) -> bool:
    """Confirm with a real parse that the message ends with an SOA after ``count_needed`` RRs."""
    try:
        message = dns.message.from_wire(wire, one_rr_per_rrset=True, ignore_trailing=True)
    except dns.exception.DNSException:
        return False
    answer = message.answer
    return len(answer) >= count_needed and answer[-1].rdtype == dns.rdatatype.SOA


def _unsigned(body: bytes, owner: bytes | None) -> bytes:
    """``body`` without its TSIG record (unchecked: the parser checks), for the end test."""
    if owner is None:
        return body
    start = split_tsig(body, owner)
    if start is None:
        return body
    count = struct.unpack_from("!H", body, 10)[0]
    return body[:10] + struct.pack("!H", count - 1) + body[12:start]


async def drain(
    address: str,
    port: int,
    zone: str,
    spool: BinaryIO,
    *,
    timeout: float,
    total: float,
    tsig: TsigKey | None = None,
) -> Drained:
    """Ask ``address`` for AXFR of ``zone`` and copy the answer to ``spool`` as fast as it comes.

    ``timeout`` bounds the connect and each read; ``total`` the whole transfer; ``tsig`` signs
    the query (the answers are checked when the spool is parsed).
    """
    started = time.monotonic()
    deadline = started + total
    result = Drained(outcome=None)
    owner: bytes | None = None
    if tsig is None:
        wire = dns.message.make_query(zone, dns.rdatatype.AXFR).to_wire()
    else:
        wire, result.request_mac = signed_query(zone, "AXFR", tsig)
        owner = dns.name.from_text(tsig.name).to_wire().lower()  # type: ignore[union-attr]
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(address, port), timeout
        )
    except TimeoutError:
        return Drained(Outcome.TIMEOUT, error="connect timed out", seconds=timeout)
    except OSError as exc:
        return Drained(Outcome.ERROR, error=f"connect failed: {exc.strerror or exc}")
    try:
        writer.write(struct.pack("!H", len(wire)) + wire)
        await writer.drain()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            head = await asyncio.wait_for(reader.readexactly(2), min(timeout, left))
            (length,) = struct.unpack("!H", head)
            body = await asyncio.wait_for(reader.readexactly(length), min(timeout, left))
            spool.write(head)
            spool.write(body)
            result.messages += 1
            result.size += length + 2
            if length < 12 or body[:2] != wire[:2]:
                result.outcome = Outcome.ERROR
                result.error = f"message {result.messages} is not an answer to our query"
                break
            rcode = body[3] & 0x0F
            if rcode != dns.rcode.NOERROR:
                text = dns.rcode.to_text(rcode)
                refused = rcode in (dns.rcode.REFUSED, dns.rcode.NOTAUTH)
                result.outcome = Outcome.REFUSED if refused else Outcome.ERROR
                result.error = rejection(body, tsig, result.request_mac) or text
                break
            plain = _unsigned(body, owner)
            ancount = struct.unpack_from("!H", plain, 6)[0]
            needed = 2 if result.messages == 1 else 1
            if ancount >= needed and _ends_with_soa(plain) and _last_is_soa(plain, needed):
                result.complete = True
                break
    except TimeoutError:
        result.outcome = Outcome.TIMEOUT
        result.error = f"timed out after {result.messages} messages"
    except asyncio.IncompleteReadError:
        # the parser says how many records came; the drain only knows it ended early
        result.error = f"connection closed after {result.messages} messages"
    except OSError as exc:
        result.outcome = Outcome.ERROR
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), 1.0)
    result.seconds = time.monotonic() - started
    return result


def below_cut(name: str, zone: str, cuts: set[str]) -> bool:
    """True if a proper ancestor of ``name`` (below the apex) is a delegation point."""
    if not cuts or name == zone:
        return False
    labels = name.removesuffix("." + zone).split(".")
    return any(".".join(labels[i:]) + "." + zone in cuts for i in range(1, len(labels)))


def spool_messages(spool: BinaryIO) -> Iterator[bytes]:
    """The messages of a spool, in order; a torn last message ends the iteration."""
    while True:
        head = spool.read(2)
        if len(head) < 2:
            return
        (length,) = struct.unpack("!H", head)
        body = spool.read(length)
        if len(body) < length:
            return
        yield body


def reference_answers(wire: bytes) -> tuple[int, list[WireRecord]]:
    """The rcode and answer records of ``wire`` as dnspython reads them.

    The census's reference reader, and the judge of every message the fast reader
    (:func:`.wire.read_answers`) finds unusual.
    """
    message = dns.message.from_wire(wire, one_rr_per_rrset=True)
    out: list[WireRecord] = []
    for rrset in message.answer:
        key = tuple(label.lower() for label in rrset.name.labels)
        owner = rrset.name.to_text(omit_final_dot=True).lower()
        for rdata in rrset:
            soa = None
            if rrset.rdtype == dns.rdatatype.SOA:
                soa = (
                    rdata.serial,
                    rdata.mname.to_text(omit_final_dot=True),
                    rdata.rname.to_text(omit_final_dot=True),
                )
            out.append((key, owner, rrset.rdtype, rrset.ttl, rdata.to_text(), soa))
    return message.rcode(), out


@dataclass
class AxfrParser:
    """Checks and unpacks an AXFR stream fed one message at a time.

    The stream must start with the zone's SOA and end with the same SOA; anything else raises
    ``TransferError`` with what went wrong and how many records were read.  ``fast`` reads
    messages with :mod:`.wire` (dnspython only for the unusual ones); False reads every
    message with dnspython, the reference the fast reader is tested and benched against.
    """

    zone: str
    fast: bool = True
    records: int = 0
    serial: int | None = None
    mname: str | None = None
    rname: str | None = None
    done: bool = False
    dropped: int = 0
    """Records outside the zone, ignored (zone data is hostile input)."""
    fallbacks: int = 0
    """Messages the fast reader handed to dnspython."""
    fresh: list[str] = field(default_factory=list)
    """Owner names at most one label under the zone not yet taken (:meth:`take_fresh`), in
    the order they came, each once (a transfer groups a name's records): none of them can be
    below a delegation point, so they can be seen before the transfer ends."""
    deep: list[str] = field(default_factory=list)
    """Owner names two or more labels under the zone: seen once the cuts are all known."""
    cuts: set[str] = field(default_factory=set)
    """Owners of NS records below the apex: the delegation points (empty after a fork)."""
    cut_count: int = 0
    """How many delegation points a forked parser saw."""
    _apex: Labels = field(init=False)
    _messages: int = 0
    _last: str = ""
    _dots: int = 0

    def __post_init__(self) -> None:
        self._apex = tuple(label.lower() for label in dns.name.from_text(self.zone).labels)
        self._dots = len(self._apex) - 1  # "kp" -> 1: "d1.kp" has one dot, "a.d1.kp" two

    def take_fresh(self) -> list[str]:
        """The shallow owner names read since the last call."""
        fresh, self.fresh = self.fresh, []
        return fresh

    def _decode(self, wire: bytes) -> list[WireRecord]:
        if self.fast:
            try:
                return read_answers(wire)
            except Unusual:
                self.fallbacks += 1
        try:
            rcode, answers = reference_answers(wire)
        except (dns.exception.DNSException, ValueError, IndexError) as exc:
            raise TransferError(
                f"{self.zone}: malformed message {self._messages} after {self.records} "
                f"records: {exc}"
            ) from None
        if rcode != dns.rcode.NOERROR:
            raise TransferError(f"{self.zone}: {dns.rcode.to_text(rcode)}")
        return answers

    def feed(self, wire: bytes) -> list[Record]:
        self._messages += 1
        if self.done:
            raise TransferError(f"{self.zone}: data after the closing SOA")
        apex = self._apex
        depth = -len(apex)
        out: list[Record] = []
        append = out.append
        fresh, deep, dots, last, cuts = self.fresh, self.deep, self._dots, self._last, self.cuts
        texts = _TYPE_TEXT
        records = dropped = 0
        last_key: Labels | None = None
        inside = False
        try:
            for key, owner, rdtype, ttl, value, soa in self._decode(wire):
                if soa is not None and key == apex:
                    if self.serial is None:
                        self.serial, self.mname, self.rname = soa
                    elif self.done:
                        raise TransferError(f"{self.zone}: data after the closing SOA")
                    elif soa[0] != self.serial:
                        raise TransferError(
                            f"{self.zone}: closing SOA serial {soa[0]} is not {self.serial}"
                        )
                    else:
                        self.done = True
                        continue
                elif self.done:
                    raise TransferError(f"{self.zone}: data after the closing SOA")
                elif self.serial is None:
                    raise TransferError(f"{self.zone}: the transfer does not start with SOA")
                if key is not last_key:  # the records of one owner share its labels
                    last_key = key
                    inside = key[depth:] == apex
                if not inside:
                    dropped += 1
                    continue
                records += 1
                if owner != last:
                    (fresh if owner.count(".") <= dots else deep).append(owner)
                    last = owner
                if rdtype == NS and key != apex:
                    cuts.add(owner)
                append((owner, texts.get(rdtype) or type_text(rdtype), ttl, value))
        finally:
            self.records += records
            self.dropped += dropped
            self._last = last
        return out

    def deep_names(self) -> list[str]:
        """The deep owner names of the transfer that are data of this zone, once each, in the
        order of the transfer: names below a delegation point are glue (the child zone says
        whether they exist; a glue name under ``tra.kp`` in ``kp`` may be only a wildcard)."""
        zone, cuts = self.zone, self.cuts
        return [n for n in dict.fromkeys(self.deep) if not below_cut(n, zone, cuts)]

    def summary(self) -> dict[str, object]:
        """What a forked parser hands back at the end (plain data, for ``marshal``)."""
        return {"records": self.records, "serial": self.serial, "mname": self.mname,
                "rname": self.rname, "done": self.done, "dropped": self.dropped,
                "fallbacks": self.fallbacks, "deep": self.deep_names(),
                "cuts": len(self.cuts), "messages": self._messages}

    def restore(self, summary: dict) -> None:
        """Take a forked parser's summary: its deep names already filtered by its cuts, which
        stay there (a million delegation points are not worth sending back)."""
        for key, value in summary.items():
            if key == "cuts":
                self.cut_count = value
            else:
                setattr(self, "_messages" if key == "messages" else key, value)
        self.cuts = set()

    def finish(self) -> None:
        if not self.done:
            raise TransferError(f"{self.zone}: stopped halfway after {self.records} records")


Sight = Callable[[list[Any]], object]
"""Writes the sightings of a batch of shallow owner names, inside the store's transaction."""
Split = Callable[[list[str]], list[Any]]
"""Turns a batch of shallow owner names into what ``sight`` takes (in the parser's process)."""


def store_spool(
    db: sqlite_utils.Database,
    run_id: int,
    zone: str,
    spool: BinaryIO,
    source: str,
    *,
    store: bool = True,
    fast: bool = True,
    verifier: Verifier | None = None,
    sight: Sight | None = None,
    split: Split | None = None,
    fork: bool | None = None,
) -> AxfrParser:
    """Parse ``spool`` and, if ``store``, write its records to ``dns_records`` atomically.

    ``verifier`` checks and strips the TSIG of every message of a signed transfer.  ``sight``
    is given each batch of shallow owner names (:attr:`AxfrParser.fresh`) in the same
    transaction (first through ``split``, in the parser's process); the deep ones stay in the
    parser.  ``fork`` parses in a forked child process
    while this one writes (two cores: parse and SQLite each take about half of a big
    transfer); None forks for unsigned spools of at least :data:`PARALLEL_BYTES`.
    Raises ``TransferError`` (after rolling back) when the stream is bad.
    """
    if not store:
        sight = None
    if fork is None:
        spool.seek(0, 2)
        fork = verifier is None and spool.tell() >= PARALLEL_BYTES
    if fork and verifier is not None:
        raise ValueError("signed transfers are parsed in this process")
    spool.seek(0)
    conn = db.conn
    with db.atomic():
        # rows go to an index-free staging table, then into dns_records a batch at a time
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS census_records "
            "(name TEXT, type TEXT, ttl INTEGER, value TEXT)"
        )
        conn.execute("DELETE FROM temp.census_records")

        def write(rows: list[Record], fresh: list[Any]) -> None:
            # each batch goes on at once: with a forked parser this process is idle between
            # batches, and one statement for the whole zone at the end would follow the parse
            if rows:
                conn.executemany("INSERT INTO temp.census_records VALUES (?, ?, ?, ?)", rows)
                conn.execute(
                    "INSERT INTO dns_records (run_id, name, type, ttl, value, source) "
                    "SELECT ?, name, type, ttl, value, ? FROM temp.census_records",
                    [run_id, source],
                )
                conn.execute("DELETE FROM temp.census_records")
            if sight is not None and fresh:
                sight(fresh)

        cut = (split or list) if sight is not None else _nothing
        if fork:
            parser = _parse_forked(spool, zone, fast, store, cut, write)
        else:
            parser = _parse_here(spool, zone, fast, store, verifier, cut, write)
    return parser


def _nothing(names: list[str]) -> list[Any]:
    return []


Write = Callable[[list[Record], list[Any]], None]


def _parse_here(
    spool: BinaryIO,
    zone: str,
    fast: bool,
    store: bool,
    verifier: Verifier | None,
    split: Split,
    write: Write,
) -> AxfrParser:
    parser = AxfrParser(zone, fast)
    batch: list[Record] = []
    for wire in spool_messages(spool):
        if verifier is not None:
            wire = verifier.strip(wire)
        rows = parser.feed(wire)
        if store:
            batch += rows
        if len(batch) >= BATCH or len(parser.fresh) >= BATCH:
            write(batch, split(parser.take_fresh()))
            batch = []
    parser.finish()
    if verifier is not None:
        verifier.finish()
    write(batch, split(parser.take_fresh()))
    return parser


def _parse_child(
    spool: BinaryIO, zone: str, fast: bool, store: bool, split: Split, out: Any
) -> None:
    """The forked parser: batches of rows and fresh names, then the summary or the error."""
    try:
        parser = AxfrParser(zone, fast)
        spool.seek(0)
        batch: list[Record] = []
        for wire in spool_messages(spool):
            rows = parser.feed(wire)
            if store:
                batch += rows
            if len(batch) >= BATCH or len(parser.fresh) >= BATCH:
                out.send_bytes(marshal.dumps(("rows", batch, split(parser.take_fresh()))))
                batch = []
        parser.finish()
        out.send_bytes(marshal.dumps(("rows", batch, split(parser.take_fresh()))))
        out.send_bytes(marshal.dumps(("end", parser.summary())))
    except TransferError as exc:
        out.send_bytes(marshal.dumps(("error", str(exc))))
    except Exception as exc:  # the parent must hear of it, not wait for rows
        out.send_bytes(marshal.dumps(("error", f"{zone}: parser failed: {exc!r}")))
    finally:
        out.close()


def _parse_forked(
    spool: BinaryIO,
    zone: str,
    fast: bool,
    store: bool,
    split: Split,
    write: Write,
) -> AxfrParser:
    """Parse ``spool`` in a forked child; write its batches here as they come."""
    context = multiprocessing.get_context("fork")
    reader, writer = context.Pipe(duplex=False)
    child = context.Process(target=_parse_child, args=(spool, zone, fast, store, split, writer),
                            daemon=True)
    child.start()
    writer.close()
    parser = AxfrParser(zone, fast)
    try:
        while True:
            try:
                message = marshal.loads(reader.recv_bytes())
            except EOFError:
                raise TransferError(f"{zone}: the parser process ended early") from None
            if message[0] == "rows":
                write(message[1], message[2])
            elif message[0] == "end":
                parser.restore(message[1])
                return parser
            else:
                raise TransferError(message[1])
    finally:
        reader.close()
        child.join(5)
        if child.is_alive():
            child.kill()
            child.join()
