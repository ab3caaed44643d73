"""Where a cut probe phase stood, so a resumed phase asks only the questions it had not settled.

The big phases (the wordlist and PTR sweeps, the record phase) ask their questions in a fixed
order through one :class:`.flight.Flight`, which answers them out of order.  A question is
*settled* when it and every question before it have their outcome; replies to later questions
wait in memory (a few windows at most).  Every ``SAVE_REPLIES`` settled replies or
``SAVE_SECONDS``, the phase stores the settled replies' rows and, in the same transaction, its
checkpoint in ``probe_phases.state``: how many questions of each part are settled, the
per-server counts those questions add up to, the run's notes and what the phase carries
(a sweep's wildcards), and moves the phase's ``marks`` past what it stored.

A probe resumed after a kill keeps what the checkpoint covers, undoes only what came after it
(nothing: the phase writes nowhere else), restores the counts, and skips the settled
questions: the rows, counts and notes come out as in an uninterrupted run, and only questions
that were in flight or waiting behind one at the kill are asked again (at most a window or two
per server).
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .context import Context
from .engine import Rcode, Server
from .flight import Flight, Question
from .replies import Reply

log = logging.getLogger(__name__)

SAVE_REPLIES = 10_000
"""Settled replies a phase stores in one transaction at most."""
SAVE_SECONDS = 2.0
"""A phase stores what it has settled at least this often (sweeps keep few rows)."""

Store = Callable[[list[Reply]], None]
"""Writes the rows of settled replies; called inside the checkpoint's transaction."""


class Checkpoint:
    """The settled questions of one probe phase, stored with the rows they gave.

    ``phase`` None keeps no record (names probed outside the probe stage): it only stores.
    """

    def __init__(self, ctx: Context, phase: str | None) -> None:
        self.ctx = ctx
        self.phase = phase if ctx.phases is not None else None
        state = ctx.phases.cut.get(phase, {}) if ctx.phases is not None and phase else {}
        self.parts: dict[str, int] = dict(state.get("parts", {}))
        """Questions settled per part of the phase (a sweep may have two flights)."""
        self.extra: dict[str, Any] = state.get("extra", {})
        """What the phase carries to its next part or to a resume, as JSON."""
        if state:
            log.info("run %d: probe phase %s resumes at %s", ctx.run_id, phase, self.parts)
        self.part = ""
        self.order: deque[list[Reply | None]] = deque()
        self.waiting: dict[tuple[Server, str, str], deque[list[Reply | None]]] = {}
        self.settled: list[Reply] = []
        self.base: dict[Server, tuple[int, int, int]] = {}
        self.added: dict[Server, list[int]] = {}
        self.timeouts_of: dict[tuple[Server, str, str], int] = {}
        self.saved_at = time.monotonic()
        self.saves = 0

    def start(self, part: str = "") -> int:
        """How many questions of ``part`` were settled before (to skip); counts from now."""
        self.part = part
        self.parts.setdefault(part, 0)
        engine = self.ctx.engine
        # nothing of this phase is in flight now, so the engine's counts are exact
        self.base = {k: (s.queries, s.answered, s.timeouts) for k, s in engine.servers.items()}
        self.added = {}
        return self.parts[part]

    def questions(self, source: Iterable[Question], part: str = "") -> Iterator[Question]:
        """``source`` without the questions settled before, each noted as it goes out."""
        skip = self.start(part)
        for index, question in enumerate(source):
            if index < skip:
                continue
            slot: list[Reply | None] = [None]
            self.order.append(slot)
            key = (question[0], question[1].removesuffix("."), question[2])
            self.waiting.setdefault(key, deque()).append(slot)
            yield question

    def watch(self, flight: Flight) -> None:
        """Count the flight's timeouts per question (they are part of its settled counts)."""
        flight.on_timeout = self._timed_out

    def _timed_out(self, server: Server, qname: str, rdtype: str) -> None:
        key = (server, qname, rdtype)
        self.timeouts_of[key] = self.timeouts_of.get(key, 0) + 1

    def arrived(self, replies: list[Reply]) -> None:
        """Put replies in their questions' places; settle the questions now complete."""
        for reply in replies:
            key = (reply.server, reply.qname, reply.rdtype)
            slots = self.waiting.get(key)
            if not slots:
                log.warning("a reply to a question not asked: %s %s", reply.qname, reply.rdtype)
                continue
            slots.popleft()[0] = reply
            if not slots:
                del self.waiting[key]
        order = self.order
        while order and order[0][0] is not None:
            self.settle(order.popleft()[0])

    def settle(self, reply: Reply) -> None:
        self.settled.append(reply)
        self.parts[self.part] += 1
        timeouts = self.timeouts_of.pop((reply.server, reply.qname, reply.rdtype), 0)
        tries = timeouts + (reply.rcode != Rcode.TIMEOUT)
        counts = self.added.setdefault(reply.server, [0, 0, 0])
        counts[0] += tries
        counts[1] += reply.answered
        counts[2] += timeouts

    def due(self) -> bool:
        """Whether to store now: enough settled, or long enough since the last store."""
        return len(self.settled) >= SAVE_REPLIES or (
            bool(self.settled) and time.monotonic() - self.saved_at >= SAVE_SECONDS)

    def save(self, store: Store, final: bool = False) -> None:
        """Store the settled replies and the checkpoint in one transaction.

        ``final`` when the part's flight has ended: every reply is in.
        """
        if final:
            for slot in self.order:  # none is missing once the flight ended
                if slot[0] is not None:
                    self.settle(slot[0])
            self.order.clear()
            self.waiting.clear()
        settled, self.settled = self.settled, []
        db = self.ctx.db
        with db.atomic():
            store(settled)
            if self.phase is not None:
                from .phases import current_marks

                db.execute(
                    "UPDATE probe_phases SET state = ?, marks = ? WHERE run_id = ? "
                    "AND phase = ?",
                    [json.dumps(self.state()), json.dumps(current_marks(db)),
                     self.ctx.run_id, self.phase])
        self.saved_at = time.monotonic()
        self.saves += 1

    def state(self) -> dict[str, Any]:
        """The checkpoint: settled questions per part, the counts they make, notes, extra."""
        servers = []
        for server, s in self.ctx.engine.servers.items():
            queries, answered, timeouts = self.base.get(server, (0, 0, 0))
            more = self.added.get(server, (0, 0, 0))
            servers.append([list(server), queries + more[0], answered + more[1],
                            timeouts + more[2], s.dead, s.failures_in_a_row])
        return {"servers": servers, "notes": list(self.ctx.notes), "parts": self.parts,
                "extra": self.extra}
