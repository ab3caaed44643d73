"""The wire form of a question, built once and shared: a :class:`.flight.Flight` puts only
a 2-byte ID in front of it at send time."""

from __future__ import annotations

import functools
import struct

import dns.name
import dns.rdatatype

from .engine import Server

Question = tuple[Server, str, str]
"""Which server to ask, the name (a final dot is optional) and the type."""

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
def type_and_class(rdtype: str) -> bytes:
    """The question's type and class IN."""
    return struct.pack("!HH", dns.rdatatype.from_text(rdtype), 1)
