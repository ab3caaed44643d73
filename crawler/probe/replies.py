"""One reply to one query, read from the wire into what the census keeps: outcome and records.

The fast path (:mod:`.flight`) reads every reply here.  A reply with no answer records is
classified from its header alone (NXDOMAIN, NODATA, REFUSED, SERVFAIL: most of a sweep).  A
reply with answers is walked with the AXFR reader's name and rdata readers (:mod:`.wire`) and
grouped as dnspython groups RRs into RRsets (one TTL per RRset, the lowest; a repeated record
kept once), so the rows are those ``dns.message.from_wire`` would give.  The authority and
additional sections are checked record by record by the same readers, because dnspython
refuses a whole message for one bad record there; the EDNS OPT record is accepted when it is
the plain one (root owner, additional section, no extended rcode, no options).

Anything else -- another opcode, an OPT with options, a TSIG, an RRSIG, two different CNAMEs
at one name, records that differ only in case -- raises :class:`.wire.Unusual` inside, and the
reply is parsed by dnspython instead, which gives the outcome (or the error) the census has
always recorded.  So the stored rows never depend on which reader ran.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import NamedTuple

import dns.exception
import dns.message
import dns.rcode

from .engine import Rcode, Server, classify
from .sweep import HEADER_ONLY
from .wire import Cached, Unusual, _quick_name, _rdata_text, read_name, type_text

Record = tuple[str, str, int, str]
"""One answer record as ``dns_records`` stores it: owner (lower case, no final dot), type,
TTL, value as ``rdata.to_text()`` prints it."""

_HEADER = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")
_OPT, _TSIG, _SIG, _RRSIG = 41, 250, 24, 46
_SINGLETONS = frozenset({5, 6, 30, 39, 47})
"""``dns.rdatatype.is_singleton``: CNAME, SOA, NXT, DNAME, NSEC (a second one replaces the
first in dnspython's RRset)."""

_RCODES = {rcode: meaning for rcode, meaning in HEADER_ONLY.items() if rcode != dns.rcode.NOERROR}


class Reply(NamedTuple):
    """One question's outcome on the fast path: what :class:`.engine.Answer` says, as rows."""

    server: Server
    qname: str
    """As asked, without the final dot."""
    rdtype: str
    rcode: Rcode
    records: Sequence[Record]
    answered: bool
    """A reply came (even NXDOMAIN or REFUSED); False for timeouts and unreadable replies."""
    error: str | None = None

    def values(self, rdtype: str) -> list[str]:
        """The values of the answer records of ``rdtype``, as ``Answer.values`` gives them."""
        return sorted({r[3] for r in self.records if r[1] == rdtype})


def message_records(response: dns.message.Message) -> list[Record]:
    """The rows of every RR of a dnspython message's answer section."""
    return [
        (rrset.name.to_text(omit_final_dot=True).lower(), type_text(rrset.rdtype), rrset.ttl,
         rdata.to_text())
        for rrset in response.answer
        for rdata in rrset
    ]


def read_reply(data: bytes, question_end: int, server: Server, qname: str,
               rdtype: str) -> Reply | None:
    """The outcome of a reply already matched to its question (which ends at
    ``question_end``); None when it is truncated (ask again over TCP)."""
    if data[2] & 0x02:
        return None
    rcode = data[3] & 0x0F
    if data[6] == 0 and data[7] == 0 and rcode in HEADER_ONLY:
        return Reply(server, qname, rdtype, HEADER_ONLY[rcode], (), True)
    try:
        records = read_records(data, question_end)
    except (Unusual, IndexError, ValueError, struct.error):
        # whatever the fast reader is unsure of, dnspython decides
        return read_with_dnspython(data, server, qname, rdtype)
    if rcode == dns.rcode.NOERROR:
        outcome = Rcode.NOERROR if records else Rcode.NODATA
    else:
        outcome = _RCODES.get(rcode, Rcode.ERROR)
    return Reply(server, qname, rdtype, outcome, records, True)


def read_with_dnspython(data: bytes, server: Server, qname: str, rdtype: str) -> Reply:
    """The reference reading of a reply: what the census recorded before the fast reader."""
    try:
        response = dns.message.from_wire(data)
    except (dns.exception.DNSException, ValueError, IndexError) as exc:
        return Reply(server, qname, rdtype, Rcode.ERROR, (), False,
                     f"{type(exc).__name__}: {exc}")
    return Reply(server, qname, rdtype, classify(response), message_records(response), True)


def read_records(data: bytes, question_end: int) -> list[Record]:
    """The answer section's records, RRset by RRset; :class:`Unusual` where dnspython would
    not read the message exactly so (or at all)."""
    size = len(data)
    _, flags, _, ancount, nscount, arcount = _HEADER.unpack_from(data)
    if flags & 0x7800:
        raise Unusual("not a QUERY")
    cache: dict[int, Cached] = {}
    # the question was matched byte for byte: labels then the root; cache its positions,
    # since answers point back into it
    _quick_name(data, 12, question_end - 4, cache)
    pos = question_end
    groups: dict[tuple[tuple[bytes, ...], int], list] = {}
    unpack_rr = _RR.unpack_from
    for _ in range(ancount):
        found = _quick_name(data, pos, size, cache)
        owner, pos = found if found is not None else read_name(data, pos, size, cache)
        if pos + 10 > size:
            raise Unusual("torn record header")
        rrtype, rrclass, ttl, rdlen = unpack_rr(data, pos)
        pos += 10
        end = pos + rdlen
        if end > size or rrclass != 1 or rrtype in (_OPT, _TSIG, _SIG, _RRSIG):
            raise Unusual("torn rdata, another class, a meta record or a signature")
        text, _ = _rdata_text(data, rrtype, pos, end, cache)
        pos = end
        if ttl > 0x7FFFFFFF:
            ttl = 0
        key = (owner[0], rrtype)
        group = groups.get(key)
        if group is None:
            groups[key] = [owner[1], rrtype, ttl, [text]]
            continue
        if ttl < group[2]:
            group[2] = ttl
        texts = group[3]
        if text in texts:
            continue
        if rrtype in _SINGLETONS:
            raise Unusual("two records of a singleton type")
        lowered = text.lower()
        if any(t.lower() == lowered for t in texts):
            raise Unusual("records that differ only in case")
        texts.append(text)
    for i in range(nscount + arcount):
        found = _quick_name(data, pos, size, cache)
        owner, pos = found if found is not None else read_name(data, pos, size, cache)
        if pos + 10 > size:
            raise Unusual("torn record header")
        rrtype, rrclass, ttl, rdlen = unpack_rr(data, pos)
        pos += 10
        end = pos + rdlen
        if end > size:
            raise Unusual("torn rdata")
        if rrtype == _OPT:
            if i < nscount or owner[0] != (b"",) or ttl >> 24 or rdlen or opt_seen(cache):
                raise Unusual("an OPT dnspython reads otherwise")
            cache[-1] = owner
        elif rrclass != 1 or rrtype == _TSIG:
            raise Unusual("another class or a TSIG")
        else:
            _rdata_text(data, rrtype, pos, end, cache)
        pos = end
    if pos != size:
        raise Unusual("trailing bytes")
    return [
        (_owner_text(owner), type_text(rrtype), ttl, text)
        for owner, rrtype, ttl, texts in groups.values()
        for text in texts
    ]


def opt_seen(cache: dict[int, Cached]) -> bool:
    """Whether an OPT was read already (marked at key -1 of the message's name cache)."""
    return -1 in cache


def _owner_text(text: str) -> str:
    """A name's text as ``to_text(omit_final_dot=True).lower()`` prints it."""
    return (text if text == "." else text[:-1]).lower()
