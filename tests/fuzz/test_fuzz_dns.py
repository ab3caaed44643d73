"""The readers of DNS bytes on mutated lab messages: both AXFR readers agree message by message
and transfer by transfer, and raise nothing but ``Unusual`` (fast reader, which hands over to
dnspython) and ``TransferError``; the sweep turns any datagram into an ``Answer`` or ignores it;
the flight's reply reader gives dnspython's outcome and rows for every reply it parses."""

from __future__ import annotations

import asyncio
import functools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crawler.probe.engine import Answer
from crawler.probe.replies import HEADER_ONLY, read_with_dnspython
from crawler.probe.replies import read_reply as read_fast_reply
from crawler.probe.sweep import Channel, question_bytes, read_reply
from crawler.probe.wire import Unusual, read_answers
from tests.fuzz.harness import EXAMPLES, bounded, fuzz_for, mutants, read_seeds
from tests.probe.test_axfr import ZONE, messages
from tests.probe.test_wire import EVERY_TYPE, HOSTILE, agree, both_ways

pytestmark = [pytest.mark.fuzz, pytest.mark.slow]

TOKENS = [b"\xc0\x0c", b"\xc0\x00", b"\xc0\xff", b"\x3f", b"\x40", b"\x00", b"\xff\xff",
          b"\x00\x06\x00\x01", b"\x00\x29", b"\x00\xfa", b"\x7f\xff\xff\xff", b"\x00\x10",
          b"\x01a", b"\x00\x01\x00\x01\x00\x00\x0e\x10\x00\x04"]
SERVER = ("127.45.179.53", 53)


@functools.cache
def axfr_seeds() -> list[bytes]:
    """Messages of the lab's transfers, of a zone of every type, and the hostile ones."""
    return [*read_seeds("axfr"), *messages(EVERY_TYPE, 4), *messages(ZONE, 2),
            *(w for w in HOSTILE.values() if w)]


@functools.cache
def reply_seeds() -> list[bytes]:
    return [*read_seeds("dns"), *axfr_seeds()[:20]]


def test_fuzz_fast_axfr_reader_agrees_with_dnspython(fuzz_seconds: float) -> None:
    @EXAMPLES
    @given(wire=mutants(axfr_seeds(), TOKENS, max_size=65_535))
    def one(wire: bytes) -> None:
        try:
            bounded(read_answers, wire, size=len(wire))
        except Unusual:
            return
        assert agree(wire)  # dnspython reads the same records

    fuzz_for(fuzz_seconds, "probe.wire.read_answers()", one)


def test_fuzz_axfr_transfers_read_the_same_both_ways(fuzz_seconds: float) -> None:
    @EXAMPLES
    @given(wires=st.lists(mutants(axfr_seeds(), TOKENS, max_size=65_535), min_size=1,
                          max_size=4), framed=st.booleans())
    def one(wires: list[bytes], framed: bool) -> None:
        if framed:  # a transfer that starts and ends right, with mutated messages between
            wires = [*messages(ZONE[:1], 1), *wires, *messages(ZONE[-1:], 1)]
        fast, reference = bounded(both_ways, wires, size=sum(map(len, wires)))
        assert fast == reference
        assert fast[1] is None or isinstance(fast[1], str)  # only TransferError is caught

    fuzz_for(fuzz_seconds, "probe.axfr.AxfrParser (fast, dnspython)", one)


def test_fuzz_sweep_replies(fuzz_seconds: float) -> None:
    loop = asyncio.new_event_loop()

    @EXAMPLES
    @given(reply=mutants(reply_seeds(), TOKENS, max_size=65_535),
           rdtype=st.sampled_from(["A", "AAAA", "NS", "MX", "TXT", "SOA", "PTR", "CAA"]))
    def one(reply: bytes, rdtype: str) -> None:
        if len(reply) < 12:
            return  # the channel drops those before read_reply sees them
        answer = bounded(read_reply, reply, SERVER, "kcna.kp", rdtype, size=len(reply))
        assert answer is None or isinstance(answer, Answer)
        if answer is not None:
            for kind in ("A", "AAAA", "NS", "MX", "TXT", "SOA", "CNAME", rdtype):
                assert all(isinstance(v, str) for v in answer.values(kind))
        # the channel: a datagram matches the query in flight or is counted as ignored
        channel = Channel()
        future = loop.create_future()
        channel.waiting[int.from_bytes(reply[:2])] = (question_bytes("kcna.kp", rdtype), future)
        channel.datagram_received(reply, SERVER)
        assert future.done() or channel.ignored == 1

    try:
        fuzz_for(fuzz_seconds, "probe.sweep.read_reply() and Channel", one)
    finally:
        loop.close()


def _question_end(reply: bytes) -> int | None:
    """Where the one uncompressed question of ``reply`` ends (as the flight matched it)."""
    pos = 12
    while pos < len(reply) and 0 < reply[pos] < 64:
        pos += reply[pos] + 1
    if pos >= len(reply) or reply[pos] or reply[4:6] != b"\0\1":
        return None
    return pos + 5 if pos + 5 <= len(reply) else None


def test_fuzz_flight_replies_read_as_dnspython_does(fuzz_seconds: float) -> None:
    @EXAMPLES
    @given(reply=mutants(reply_seeds(), TOKENS, max_size=65_535))
    def one(reply: bytes) -> None:
        end = _question_end(reply) if len(reply) >= 12 else None
        if end is None or reply[2] & 0x02:
            return  # the flight ignores it, or asks again over TCP
        if reply[6:8] == b"\0\0" and reply[3] & 0x0F in HEADER_ONLY:
            return  # read from the header alone, by design
        fast = bounded(read_fast_reply, reply, end, SERVER, "kcna.kp", "A", size=len(reply))
        reference = read_with_dnspython(reply, SERVER, "kcna.kp", "A")
        assert (fast.rcode, fast.answered, sorted(fast.records)) == (
            reference.rcode, reference.answered, sorted(reference.records))

    fuzz_for(fuzz_seconds, "probe.replies.read_reply() (fast, dnspython)", one)
