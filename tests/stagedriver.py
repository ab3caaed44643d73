"""``python -m tests.stagedriver STAGE census-args...``: ``census`` with one stage held open.

The stage named (``-`` for none) does its work, then waits 60 s before it returns, so a test
can interrupt a run in a stage that otherwise takes a second (classify, compare);
``probe:PHASE`` waits after that phase of the probe has been recorded finished, and
``probe:~PHASE`` after its work but before it is recorded finished (it stays unfinished),
``probe:PHASE@N`` after the phase stored its N-th checkpoint (stored after every batch of
replies then, so the kill lands mid-phase), ``probe:PHASE%N`` after the phase stored its N-th
batch of answers (:mod:`crawler.probe.answers`, stored after every answer then), and
``probe:zones#N`` after the N-th zone transfer was recorded.
When ``CENSUS_TEST_HELD`` names a file, the driver creates it as it starts to wait.  Nothing
else changes: the CLI, its signal handling and the crawl process are the real ones.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any


def wait() -> None:
    """Hold the run open for 60 s, saying so through ``CENSUS_TEST_HELD``; a stop asked for
    during the held work, whose ``KeyboardInterrupt`` a library swallowed, ends the hold at
    once (the stage's ``check_stop`` then stops the run, as it would without the hold)."""
    from crawler.errors import STOP

    if os.environ.get("CENSUS_TEST_HELD"):
        Path(os.environ["CENSUS_TEST_HELD"]).touch()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not STOP.is_set():
        time.sleep(0.05)


def main() -> None:
    from crawler import census
    from crawler.cli import cli

    hold, args = sys.argv[1], sys.argv[2:]
    if hold.startswith("probe:"):
        from crawler.probe.phases import PhaseLog

        finish = PhaseLog.finish
        name, _, saves = hold.removeprefix("probe:").partition("@")
        name, _, transfers = name.partition("#")
        name, _, answered = name.partition("%")
        if answered:
            from crawler.probe import answers

            asking, stored = name, [0]
            keep = answers.AnswerLog.save

            def save_answers_then_wait(self: answers.AnswerLog) -> None:
                before = self.saves
                keep(self)
                if self.phase == asking and self.saves > before:
                    stored[0] += 1
                    if stored[0] == int(answered):
                        wait()

            answers.AnswerLog.save = save_answers_then_wait  # type: ignore[method-assign]
            name = "-"
        if transfers:
            from crawler.probe import zones

            transfer = zones.transfer
            done = [0]

            async def transfer_then_wait(*a: Any) -> Any:
                outcome = await transfer(*a)
                done[0] += 1
                if done[0] == int(transfers):
                    wait()
                return outcome

            zones.transfer = transfer_then_wait  # type: ignore[assignment]
            name = "-"
        if saves:
            from crawler.probe import checkpoint

            cut = name
            checkpoint.SAVE_SECONDS = 0.0
            save = checkpoint.Checkpoint.save

            def save_then_wait(self: checkpoint.Checkpoint, *a: Any, **k: Any) -> None:
                save(self, *a, **k)
                if self.phase == cut and self.saves == int(saves):
                    wait()

            checkpoint.Checkpoint.save = save_then_wait  # type: ignore[method-assign]
            name = "-"

        def finish_then_wait(self: PhaseLog, phase: str, *a: Any) -> None:
            if name == f"~{phase}":
                wait()
            finish(self, phase, *a)
            if name == phase:
                wait()

        PhaseLog.finish = finish_then_wait  # type: ignore[method-assign]
    real = census.STAGE_FUNCTIONS.get(hold)
    if real is not None:

        def held(*a: Any) -> Any:
            result = real(*a)
            wait()
            return result

        census.STAGE_FUNCTIONS[hold] = held
    cli.main(args, prog_name="census")


if __name__ == "__main__":
    main()
