"""A minimal reader of AXFR answer messages, about ten times faster than dnspython's.

dnspython builds a ``Message``, ``Name`` and ``Rdata`` object for every record (about 17k
records a second here), which makes a zone of a million names take minutes to store.  The
census needs only text rows, so :func:`read_answers` walks the wire directly: header, question,
then each answer record's owner (compression pointers decoded once per message and cached),
type, TTL and rdata, turned into the same text ``rdata.to_text()`` gives.

It is a fast path, not a second opinion: it follows dnspython 2.9's rules for names (pointers
strictly backwards, the target wholly before the pointing part, at most 16 hops, labels under
64, names under 256 octets) and raises :class:`Unusual` at the first thing it does not handle
exactly as dnspython would -- another opcode or class, authority or additional records, a
truncated or malformed record, trailing bytes.  The caller then parses that message with
dnspython, which either accepts it or gives the error the census has always recorded; so the
rows and outcomes of a transfer do not depend on which reader ran.  Types other than A, AAAA,
NS, CNAME, PTR, MX, TXT and SOA go through ``dns.rdata.from_wire`` -- DNAME too: its target
must not be compressed (RFC 6672), which dnspython enforces and a name reader would not.
"""

from __future__ import annotations

import re
import struct

import dns.exception
import dns.ipv6
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

MAX_HOPS = dns.name.MAX_COMPRESSION_POINTER_CHAIN
_HEADER = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")
_SOA_NUMBERS = struct.Struct("!IIIII")
_NAME_ESCAPE = re.compile(rb'[^\x21-\x7e]|["().;\\@$]')
_TXT_ESCAPE = re.compile(rb'[^\x20-\x7e]|["\\]')
_NAME_TYPES = frozenset({2, 5, 12})
"""NS, CNAME, PTR: rdata is one compressible name."""
_SPECIAL_TYPES = frozenset({dns.rdatatype.OPT, dns.rdatatype.TSIG})
_TYPE_TEXT: dict[int, str] = {}

Labels = tuple[bytes, ...]
Soa = tuple[int, str, str]
WireRecord = tuple[Labels, str, int, int, str, Soa | None]
"""Owner labels (lowercased, root label last), owner text as stored (lowercased, no final
dot), type, TTL, rdata text, and for SOA records (serial, mname, rname) without final dots."""


class Unusual(Exception):
    """This message needs dnspython: the fast reader does not handle it exactly."""


def type_text(rdtype: int) -> str:
    """``dns.rdatatype.to_text``, cached: it is asked once per record."""
    text = _TYPE_TEXT.get(rdtype)
    if text is None:
        text = _TYPE_TEXT[rdtype] = dns.rdatatype.to_text(rdtype)
    return text


def _name_label(label: bytes) -> str:
    """A label as ``dns.name`` prints it: specials backslashed, the rest of ASCII as is."""
    if not _NAME_ESCAPE.search(label):
        return label.decode("ascii")
    out = []
    for c in label:
        if c in b'"().;\\@$':
            out.append("\\" + chr(c))
        elif 0x20 < c < 0x7F:
            out.append(chr(c))
        else:
            out.append(f"\\{c:03d}")
    return "".join(out)


def _txt_string(value: bytes) -> str:
    """A character-string as ``dns.rdata._escapify`` prints it, quoted."""
    if not _TXT_ESCAPE.search(value):
        return '"' + value.decode("ascii") + '"'
    out = []
    for c in value:
        if c in b'"\\':
            out.append("\\" + chr(c))
        elif 0x20 <= c < 0x7F:
            out.append(chr(c))
        else:
            out.append(f"\\{c:03d}")
    return '"' + "".join(out) + '"'


Cached = tuple[Labels, str, int, int, int]
"""Lowered labels, absolute text, end of the first part, hops, wire length."""


def read_name(wire: bytes, pos: int, end: int, cache: dict[int, Cached]) -> tuple[Cached, int]:
    """The name at ``pos`` (reading no further than ``end``) and the position after it.

    ``cache`` maps positions to names already decoded in this message, so a pointer to a
    name seen before costs one lookup.  Raises :class:`Unusual` where dnspython would raise.
    """
    start = pos
    limit = end
    labels: list[bytes] = []
    texts: list[str] = []
    length = 1
    hops = 0
    after = -1
    seg = pos
    while True:
        if pos >= limit:
            raise Unusual("name runs past its end")
        count = wire[pos]
        if count == 0:
            pos += 1
            tail: Cached | None = None
            break
        if count < 64:
            stop = pos + 1 + count
            if stop > limit:
                raise Unusual("label runs past its end")
            label = wire[pos + 1 : stop]
            labels.append(label.lower())
            texts.append(_name_label(label))
            length += count + 1
            pos = stop
            continue
        if count < 192 or pos + 2 > limit:
            raise Unusual("bad label type or torn pointer")
        target = ((count & 0x3F) << 8) | wire[pos + 1]
        if after < 0:
            after = pos + 2
        if target >= seg:
            raise Unusual("pointer does not point backwards")
        hops += 1
        if hops > MAX_HOPS:
            raise Unusual("pointer chain too long")
        limit = seg
        tail = cache.get(target)
        if tail is not None:
            if tail[2] > limit or hops + tail[3] > MAX_HOPS:
                raise Unusual("pointer target overlaps the name")
            break
        seg = pos = target
    if tail is None:
        key = (*labels, b"")
        text = ".".join(texts) + "." if texts else "."
    else:
        length += tail[4] - 1
        key = tuple(labels) + tail[0]
        text = ".".join(texts) + "." + tail[1] if texts else tail[1]
        hops += tail[3]
    if length > 255:
        raise Unusual("name too long")
    first_end = after if after >= 0 else pos
    name = (key, text, first_end, hops, length)
    cache[start] = name
    return name, first_end


def _quick_name(
    wire: bytes, start: int, limit: int, cache: dict[int, Cached]
) -> tuple[Cached, int] | None:
    """The name at ``start`` if it is labels then the root or a pointer to a name read before.

    That is nearly every name of a transfer (Knot writes ``ns2`` + a pointer into the
    ``ns1.kptc.kp`` of the record before), so each label position is cached too: a later
    pointer into the middle of this name is then one lookup.  Returns None for anything else,
    and :func:`read_name` decides, by the same rules.
    """
    if start + 2 > limit:
        return None
    count = wire[start]
    if count >= 192:  # only a pointer: the second record of an owner, a repeated target
        target = ((count & 0x3F) << 8) | wire[start + 1]
        tail = cache.get(target)
        if tail is None or target >= start or tail[2] > start or tail[3] >= MAX_HOPS:
            return None
        name = (tail[0], tail[1], start + 2, tail[3] + 1, tail[4])
        cache[start] = name
        return name, start + 2
    pos = start
    starts: list[int] = []
    labels: list[bytes] = []
    while True:
        if pos >= limit:
            return None
        count = wire[pos]
        if count == 0 or count >= 64:
            break
        stop = pos + 1 + count
        if stop > limit:
            return None
        starts.append(pos)
        labels.append(wire[pos + 1 : stop])
        pos = stop
    if count == 0:
        after, hops, tail_key, tail_text, tail_length = pos + 1, 0, (b"",), ".", 1
    else:
        if count < 192 or pos + 2 > limit:
            return None
        target = ((count & 0x3F) << 8) | wire[pos + 1]
        tail = cache.get(target)
        if tail is None or target >= start or tail[2] > start or tail[3] >= MAX_HOPS:
            return None
        after, hops = pos + 2, tail[3] + 1
        tail_key, tail_text, tail_length = tail[0], tail[1], tail[4]
    length = tail_length
    name: Cached | None = None
    for i in range(len(labels) - 1, -1, -1):
        label = labels[i]
        length += len(label) + 1
        if length > 255:
            return None
        text = label.decode() if label.isalnum() else _name_label(label)
        tail_text = text + "." + tail_text if tail_text != "." else text + "."
        tail_key = (label.lower(), *tail_key)
        name = (tail_key, tail_text, after, hops, length)
        cache[starts[i]] = name
    if name is None:
        if count == 0:
            return None
        name = (tail_key, tail_text, after, hops, tail_length)
        cache[start] = name
    return name, after


def _rdata_text(
    wire: bytes, rdtype: int, pos: int, end: int, cache: dict[int, Cached]
) -> tuple[str, Soa | None]:
    """The rdata in ``wire[pos:end]`` as ``to_text()`` prints it (and SOA fields)."""
    if rdtype == 1:
        if end - pos != 4:
            raise Unusual("A is not 4 octets")
        return f"{wire[pos]}.{wire[pos + 1]}.{wire[pos + 2]}.{wire[pos + 3]}", None
    if rdtype in _NAME_TYPES:
        name, after = read_name(wire, pos, end, cache)
        if after != end:
            raise Unusual("rdata longer than its name")
        return name[1], None
    if rdtype == 15:
        if end - pos < 3:
            raise Unusual("short MX")
        name, after = read_name(wire, pos + 2, end, cache)
        if after != end:
            raise Unusual("rdata longer than MX")
        return f"{(wire[pos] << 8) | wire[pos + 1]} {name[1]}", None
    if rdtype == 6:
        mname, after = read_name(wire, pos, end, cache)
        rname, after = read_name(wire, after, end, cache)
        if end - after != 20:
            raise Unusual("SOA numbers are not 20 octets")
        numbers = _SOA_NUMBERS.unpack_from(wire, after)
        text = f"{mname[1]} {rname[1]} " + " ".join(map(str, numbers))
        return text, (numbers[0], _no_dot(mname[1]), _no_dot(rname[1]))
    if rdtype == 28:
        if end - pos != 16:
            raise Unusual("AAAA is not 16 octets")
        return dns.ipv6.inet_ntoa(wire[pos:end]), None
    if rdtype == 16:
        if end == pos:
            raise Unusual("TXT with no strings")
        parts = []
        while pos < end:
            stop = pos + 1 + wire[pos]
            if stop > end:
                raise Unusual("TXT string runs past its rdata")
            parts.append(_txt_string(wire[pos + 1 : stop]))
            pos = stop
        return " ".join(parts), None
    try:
        rdata = dns.rdata.from_wire(dns.rdataclass.IN, rdtype, wire, pos, end - pos)
        return rdata.to_text(), None
    except (dns.exception.DNSException, ValueError, TypeError, IndexError) as exc:
        raise Unusual(f"{type_text(rdtype)}: {exc}") from None


def _no_dot(text: str) -> str:
    return text if text == "." else text[:-1]


def read_answers(wire: bytes) -> list[WireRecord]:
    """The answer records of one NOERROR query response, each as a :data:`WireRecord`.

    Raises :class:`Unusual` for anything that is not a plain answer dnspython would accept.
    """
    size = len(wire)
    if size < 12:
        raise Unusual("short header")
    _, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(wire)
    if flags & 0x780F or nscount or arcount:
        raise Unusual("not a plain NOERROR query answer")
    cache: dict[int, Cached] = {}
    pos = 12
    for _ in range(qdcount):
        _, pos = read_name(wire, pos, size, cache)
        pos += 4
        if pos > size:
            raise Unusual("torn question")
    out: list[WireRecord] = []
    unpack_rr = _RR.unpack_from
    # the same type, class, TTL and rdata bytes mean the same text within one message (its
    # pointers point at the same names): a delegation zone repeats "NS 3600 <ns1 pointer>"
    memo: dict[bytes, tuple[int, int, str]] = {}
    last_key: Labels | None = None
    owner_text = ""
    for _ in range(ancount):
        if pos + 2 > size:
            raise Unusual("torn owner")
        count = wire[pos]
        found = None
        if count >= 192:  # only a pointer: the second record of an owner
            target = ((count & 0x3F) << 8) | wire[pos + 1]
            tail = cache.get(target)
            if tail is not None and target < pos and tail[2] <= pos and tail[3] < MAX_HOPS:
                owner = cache[pos] = (tail[0], tail[1], pos + 2, tail[3] + 1, tail[4])
                found = pos = pos + 2
        elif 0 < count < 64 and pos + count + 3 <= size and wire[pos + count + 1] >= 192:
            # one label then a pointer: the first record of a delegation
            stop = pos + count + 1
            target = ((wire[stop] & 0x3F) << 8) | wire[stop + 1]
            tail = cache.get(target)
            if (tail is not None and target < pos and tail[2] <= pos and tail[3] < MAX_HOPS
                    and tail[4] + count < 255):
                label = wire[pos + 1 : stop]
                text = label.decode() if label.isalnum() else _name_label(label)
                owner = cache[pos] = ((label.lower(), *tail[0]), text + "." + tail[1],
                                      stop + 2, tail[3] + 1, tail[4] + count + 1)
                found = pos = stop + 2
        if found is None:
            quick = _quick_name(wire, pos, size, cache)
            if quick is None:
                owner, pos = read_name(wire, pos, size, cache)
            else:
                owner, pos = quick
        if pos + 10 > size:
            raise Unusual("torn record header")
        end = pos + 10 + ((wire[pos + 8] << 8) | wire[pos + 9])
        if end > size:
            raise Unusual("torn rdata")
        raw = wire[pos:end]
        known = memo.get(raw)
        if owner[0] is not last_key:  # the records of one owner share its labels
            last_key = owner[0]
            owner_text = owner[1]
            owner_text = (owner_text[:-1] if owner_text != "." else owner_text).lower()
        if known is not None:
            out.append((owner[0], owner_text, known[0], known[1], known[2], None))
            pos = end
            continue
        rdtype, rdclass, ttl, _ = unpack_rr(wire, pos)
        pos += 10
        if rdclass != 1 or rdtype in _SPECIAL_TYPES:
            raise Unusual("another class, or a meta record")
        soa = None
        if rdtype in _NAME_TYPES and (found := _quick_name(wire, pos, end, cache)) is not None:
            if found[1] != end:
                raise Unusual("rdata longer than its name")
            text = found[0][1]
        else:
            text, soa = _rdata_text(wire, rdtype, pos, end, cache)
        pos = end
        ttl = 0 if ttl > 0x7FFFFFFF else ttl
        if soa is None:
            memo[raw] = (rdtype, ttl, text)
        out.append((owner[0], owner_text, rdtype, ttl, text, soa))
    if pos != size:
        raise Unusual("trailing bytes")
    return out
