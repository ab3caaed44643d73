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

import itertools
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..errors import check_stop
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
        self.waiting: dict[tuple[Server, str, str], int] = {}
        """Question -> its place in the part, for the questions sent and not answered."""
        self.again: dict[tuple[Server, str, str], deque[int]] = {}
        """Places of a question asked more than once in a part (rare), after the first."""
        self.got: dict[int, Reply] = {}
        """Replies that came ahead of an earlier question's, by place."""
        self.taken = 0
        """Places given out in this part."""
        self.next = 0
        """The first place not settled."""
        self.settled: list[Reply] = []
        self.base: dict[Server, tuple[int, int, int]] = {}
        self.added: dict[Server, list[int]] = {}
        self.timeouts_of: dict[tuple[Server, str, str], int] = {}
        self.saved_at = time.monotonic()
        self.saves = 0

    def start(self, part: str = "") -> int:
        """How many questions of ``part`` were settled before (to skip); counts from now."""
        self.part = part
        skip = self.parts.setdefault(part, 0)
        self.taken = self.next = skip
        engine = self.ctx.engine
        # nothing of this phase is in flight now, so the engine's counts are exact
        self.base = {k: (s.queries, s.answered, s.timeouts) for k, s in engine.servers.items()}
        self.added = {}
        return skip

    def questions(self, source: Iterable[Question], part: str = "") -> Iterator[Question]:
        """``source`` without the questions settled before, each noted as it goes out.

        The phases ask names without a final dot, so a question is its own key.
        """
        skip = self.start(part)
        waiting = self.waiting
        for question in itertools.islice(source, skip, None):
            if question in waiting:
                self.again.setdefault(question, deque()).append(self.taken)
            else:
                waiting[question] = self.taken
            self.taken += 1
            yield question

    async def fly(self, questions: Iterable[Question], store: Store,
                  on_batch: Callable[[int, int], None] | None = None) -> None:
        """Ask ``questions`` in one flight, storing what settles as it goes and the rest at the end.

        ``on_batch(settled, replies)`` is told the part's settled count after each batch.
        """
        async with self.ctx.engine.flight(questions) as flight:
            self.watch(flight)
            async for replies in flight:
                self.arrived(replies)
                if self.due():
                    self.save(store)
                if on_batch is not None:
                    on_batch(self.parts[self.part], len(replies))
        self.save(store, final=True)

    def watch(self, flight: Flight) -> None:
        """Count the flight's timeouts per question (they are part of its settled counts)."""
        flight.on_timeout = self._timed_out

    def _timed_out(self, server: Server, qname: str, rdtype: str) -> None:
        key = (server, qname, rdtype)
        self.timeouts_of[key] = self.timeouts_of.get(key, 0) + 1

    def arrived(self, replies: list[Reply]) -> None:
        """Put replies in their questions' places; settle the questions now complete."""
        waiting, got, again = self.waiting, self.got, self.again
        for reply in replies:
            key = reply[:3]
            place = waiting.pop(key, None)
            if place is None:
                log.warning("a reply to a question not asked: %s %s", reply.qname, reply.rdtype)
                continue
            if again and key in again:
                waiting[key] = again[key].popleft()
                if not again[key]:
                    del again[key]
            got[place] = reply
        first = self.next
        place = first
        while place in got:
            self.settled.append(got.pop(place))
            place += 1
        if place != first:
            self.next = place
            self.count(self.settled[first - place:])

    def count(self, replies: list[Reply]) -> None:
        """Add what settled replies cost to the part's counts (tries, answered, timeouts)."""
        self.parts[self.part] += len(replies)
        added, timeouts_of = self.added, self.timeouts_of
        for reply in replies:
            counts = added.get(reply.server)
            if counts is None:
                counts = added[reply.server] = [0, 0, 0]
            timeouts = timeouts_of.pop(reply[:3], 0) if timeouts_of else 0
            counts[0] += timeouts + (reply.rcode != Rcode.TIMEOUT)
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
        check_stop()
        if final:  # every reply is in once the flight ended
            late = [self.got[place] for place in sorted(self.got)]
            self.settled += late
            self.count(late)
            self.got.clear()
            self.waiting.clear()
            self.again.clear()
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
