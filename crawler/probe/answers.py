"""The answers a run's probe got to the questions it asked one at a time, kept until their
phase ends, so a phase redone after a kill does not ask them again.

The small phases (the zone discovery's NS, SOA, A and AAAA lookups, seeds, the NSEC walk and
NSEC3 collection, the delegated domains' NS questions) ask through :meth:`.engine.Engine.query`
and :class:`.denial.DenialAsker`, one coroutine per question, and store their rows at their own
pace; a phase cut short is undone and done again (:mod:`.phases`).  Each of these questions'
outcomes is kept here (``probe_answers``): the reply's wire form, its rcode and the tries and
timeouts it cost.  Redone, the phase asks the same questions in the same order (what it asks
next depends only on what it was answered), and each one kept is answered from here: counted as
it was counted then, and asked of no server.  Each answer is stored as it comes, in a
transaction of its own (never inside a phase's; one open then delays it to the next answer), so
a kill loses only what was in flight (the commit waits for no fsync, ≈ 15 µs: what a process
kill cannot lose, a power cut may, and then the question is only asked again).  They are
deleted when their phase ends (and the rest with the probe).  The big sweeps use
:mod:`.checkpoint` instead.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

import dns.message
import sqlite_utils

from ..errors import STOP
from .engine import Answer, Rcode, Server

log = logging.getLogger(__name__)

START = "start"
"""The phase of the questions asked before the first phase (is the zone there at all)."""


@dataclass
class Kept:
    """One question's outcome as it was first got."""

    rcode: Rcode
    error: str | None
    replied: bool
    """Read from the header alone (the fast path): ``wire`` is the raw reply, no message."""
    wire: bytes | None
    tries: int
    timeouts: int

    def answer(self, server: Server, qname: str, rdtype: str) -> Answer:
        """The Answer it was (a message read back from ``wire`` unless ``replied``)."""
        response = None
        if self.wire is not None and not self.replied:
            response = dns.message.from_wire(self.wire)
        return Answer(server, qname, rdtype, self.rcode, response, self.error, self.replied,
                      self.tries, self.timeouts)


Key = tuple[str, str, int, str, str, int]
"""phase, server address, port, name, type, flags (1: DNSSEC OK, 2: recursion desired, 4: a
denial walk's reply, kept raw)."""


class AnswerLog:
    """The ``probe_answers`` of one run: those kept from an earlier attempt, and the new ones."""

    def __init__(self, db: sqlite_utils.Database, run_id: int) -> None:
        self.db = db
        self.run_id = run_id
        self.phase = START
        self.known: dict[Key, deque[Kept]] = {}
        """Answers of an earlier attempt not yet asked for again, oldest first."""
        for row in db.execute(
                "SELECT phase, address, port, qname, rdtype, flags, rcode, error, replied, wire, "
                "tries, timeouts FROM probe_answers WHERE run_id = ? ORDER BY rowid", [run_id]):
            kept = Kept(Rcode(row[6]), row[7], bool(row[8]), row[9], row[10], row[11])
            self.known.setdefault(row[:6], deque()).append(kept)
        if self.known:
            log.info("run %d: %d answers of the probe kept from before", run_id,
                     sum(map(len, self.known.values())))
        self.pending: list[list[Any]] = []
        self.synchronous = int(db.execute("PRAGMA synchronous").fetchone()[0])
        self.saves = 0

    @staticmethod
    def flags(dnssec: bool, recurse: bool) -> int:
        return int(dnssec) | 2 * int(recurse)

    def recall(self, server: Server, qname: str, rdtype: str, flags: int) -> Kept | None:
        """The kept answer to this question in this phase, if there is one left (each is
        given once: a question asked twice before is answered twice, in order)."""
        if not self.known:
            return None
        kept = self.known.get((self.phase, server[0], server[1], qname, rdtype, flags))
        if not kept:
            return None
        return kept.popleft()

    def keep(self, answer: Answer, flags: int, wire: bytes | None) -> None:
        """Store a question's outcome (with any noted while a transaction was open)."""
        if not answer.tries:  # the server was given up: nothing was asked
            return
        if STOP.is_set():  # a stop that landed in dnspython's parser reads as a bad reply
            return
        if (answer.response is not None or answer.replied) and wire is None:
            return  # a reply that cannot be written back is asked again
        self.pending.append([
            self.run_id, self.phase, answer.server[0], answer.server[1], answer.qname,
            answer.rdtype, flags, str(answer.rcode), answer.error, int(answer.replied), wire,
            answer.tries, answer.timeouts])
        self.save()

    def save(self) -> None:
        """Store the answers noted, in a transaction of their own (later if one is open)."""
        if not self.pending or self.db.conn.in_transaction:
            return
        rows, self.pending = self.pending, []
        conn = self.db.conn
        conn.execute("PRAGMA synchronous = NORMAL")  # written to the WAL, not synced
        try:
            with conn:
                conn.executemany(
                    "INSERT INTO probe_answers (run_id, phase, address, port, qname, rdtype, "
                    "flags, rcode, error, replied, wire, tries, timeouts) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        finally:
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        self.saves += 1

    def begin(self, phase: str) -> None:
        """Answers from now on belong to ``phase``."""
        self.save()
        self.phase = phase

    def finished(self, phase: str) -> None:
        """Forget ``phase``'s answers (inside the transaction that records it finished)."""
        self.pending = [row for row in self.pending if row[1] != phase]
        self.db.execute("DELETE FROM probe_answers WHERE run_id = ? AND phase = ?",
                        [self.run_id, phase])
        self.known = {k: v for k, v in self.known.items() if k[0] != phase}

    def close(self) -> None:
        """The probe ended: no answer of it is needed again."""
        self.pending.clear()
        self.known.clear()
        with self.db.conn:
            self.db.execute("DELETE FROM probe_answers WHERE run_id = ?", [self.run_id])
