"""A run as a person sees it: progress drawn from the library's callbacks, stopped by a
signal as by Ctrl-C, and its outcome printed."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

import click

UNITS = {"crawl": "page", "classify": "site", "screenshots": "site"}
PLURALS = {"page": "pages", "site": "sites", "query": "queries"}


class Progress:
    """Draws the library's ``progress(step, done, total)`` callbacks for a person.

    On a terminal (``mode='bar'``) one tqdm bar per step, with its total when known; off a
    terminal (``mode='lines'``: cron, a pipe, a log file) one line when a step starts and
    then one every ``interval`` seconds: done/total, rate, ETA.  The rate is done over the
    time since the step started, and is shown only after a second, so a step that reports
    a thousand at once never claims millions per second.
    """

    def __init__(self, mode: str | None, interval: float = 30.0,
                 clock: Callable[[], float] | None = None) -> None:
        import time

        self.mode = mode
        self.interval = interval
        self.clock = clock or time.monotonic
        self.bar: Any = None
        self.step: str | None = None
        self.started = 0.0
        self.last_line = 0.0

    def __call__(self, step: str, done: int, total: int | None) -> None:
        if not self.mode:
            return
        now = self.clock()
        if step != self.step:
            self.close()
            self.step, self.started, self.last_line = step, now, now
            if self.mode == "bar":
                from tqdm import tqdm

                self.bar = tqdm(total=total, desc=step,
                                unit=PLURALS[UNITS.get(step, "query")],
                                leave=False, file=sys.stderr,
                                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}"
                                           "{postfix}]" if total else
                                "{desc}: {n_fmt} {unit} [{elapsed}{postfix}]")
            else:
                click.echo(self.line(step, done, total, now), err=True)
        if self.mode == "lines":
            if now - self.last_line >= self.interval:
                self.last_line = now
                click.echo(self.line(step, done, total, now), err=True)
            return
        if total is not None and self.bar.total != total:
            self.bar.total = total
        self.bar.n = done
        rate, eta = self.pace(done, total, now)
        self.bar.set_postfix_str(", ".join(x for x in (rate, eta and f"ETA {eta}") if x),
                                 refresh=False)
        self.bar.refresh()

    def pace(self, done: int, total: int | None, now: float) -> tuple[str, str]:
        """The rate and the time left, as text; empty until they mean something."""
        elapsed = now - self.started
        if elapsed < 1.0 or done <= 0:
            return "", ""
        per_second = done / elapsed
        unit = UNITS.get(self.step or "", "query")
        rate = f"{per_second:.1f} {unit}/s"
        if not total or done >= total:
            return rate, ""
        left = round((total - done) / per_second)
        return rate, f"{left // 60}:{left % 60:02d}"

    def line(self, step: str, done: int, total: int | None, now: float) -> str:
        unit = UNITS.get(step, "query")
        rate, eta = self.pace(done, total, now)
        text = f"{step}: {done}/{total if total else '?'} {PLURALS[unit]}"
        return text + "".join(f", {x}" for x in (rate, eta and f"ETA {eta}") if x)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def report_run(db_path: str, run_id: int) -> str:
    """Print the outcome of a run; return its status."""
    from ..db import open_census
    from ..runs import run_summary, summary_line

    db = open_census(db_path)
    run = run_summary(db, run_id)
    db.close()
    click.echo(summary_line(run, db_path))
    if run.message:
        click.echo(run.message)
    return run.status


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGTERM (``systemctl stop``, ``timeout``) stops a run as Ctrl-C does.

    The first signal says so and raises ``KeyboardInterrupt``, which the stage turns into an
    ``interrupted`` run; later ones only repeat that it is stopping, so the run can be marked
    and the crawl flushed (within 10 s) without being cut short again.
    """
    import signal

    def again(signum: int, frame: Any) -> None:
        click.echo("still stopping…", err=True)

    def stop(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, again)
        signal.signal(signal.SIGTERM, again)
        click.echo("stopping…", err=True)
        raise KeyboardInterrupt

    before = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def run_with_progress(ctx: click.Context, fn: Callable[[Progress], int], db_path: str) -> None:
    progress = Progress(ctx.obj["progress"])
    try:
        with stop_on_signals():
            run_id = fn(progress)
    except KeyboardInterrupt:
        progress.close()
        raise click.ClickException(
            "interrupted: the run is marked 'interrupted'; continue it with census run --resume"
        ) from None
    progress.close()
    if report_run(db_path, run_id) == "failed":
        ctx.exit(1)  # for cron: a census that learned nothing is not a success
