"""The fuzz harness: Hypothesis runs each target for a share of a fixed time budget.

Hypothesis has no time budget of its own, so :func:`fuzz_for` calls a ``@given`` test again
and again (fresh random examples each time, no example database) until its share of
``--fuzz-minutes`` is spent; a failure is shrunk by Hypothesis and fails the target.  Inputs are
seeds from the lab (its pages, the WARCs and DNS messages of a lab run in ``corpus/``) mutated
by :func:`mutants`: bytes flipped, tokens that once hurt a parser spliced in, chunks deleted,
copied between seeds, or repeated into a large input (how quadratic costs show).

Every call of a parser goes through :func:`bounded`: at most ``SECONDS`` of CPU time (more
for a large input, and as much more as a fixed piece of work slows under the machine's load),
and (on
one input in ``MEMORY_EVERY``, since tracing is slow) a Python heap peak on the order of the
input's size.
"""

from __future__ import annotations

import functools
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

CORPUS = Path(__file__).parent / "corpus"
WORLD = Path(__file__).parents[2] / "crawler" / "data" / "worlds"

SECONDS = 1.0
"""CPU time one input may cost a parser (the issue's bound).  CPU time of the calling thread,
not wall time: the machine is shared, and a busy neighbour is not the parser's cost."""
LINEAR_BYTES = 256_000
"""Inputs up to this size get ``SECONDS``; larger ones proportionally more."""
MEMORY_FACTOR = 64
MEMORY_BASE = 16 * 2**20
"""Heap a parser may peak at: ``MEMORY_FACTOR`` times the input plus ``MEMORY_BASE``."""
MEMORY_EVERY = 16
MAX_INPUT = 2_000_000

REPORT: list[tuple[str, int, float]] = []
"""(target, examples, seconds) of every target run, printed at the end of the session."""

T = TypeVar("T")

# No explain phase: it traces every line of the failing call, which multiplies its CPU time
# past the bound it broke and past the test's timeout.
EXAMPLES = settings(max_examples=60, deadline=None, database=None, derandomize=False,
                    suppress_health_check=list(HealthCheck), print_blob=True,
                    phases=[p for p in Phase if p is not Phase.explain])
"""One round of a target; :func:`fuzz_for` runs rounds until its time is up."""


def fuzz_for(seconds: float, name: str, test: Callable[[], None]) -> int:
    """Run the ``@given`` ``test`` for ``seconds``; return how many rounds ran (at least one)."""
    _spin_at_start()  # the machine's pace before any target ran, for ``bounded``
    calls = [0]
    inner = test.hypothesis.inner_test  # type: ignore[attr-defined]

    def counting(*args: Any, **kwargs: Any) -> None:
        calls[0] += 1
        inner(*args, **kwargs)

    test.hypothesis.inner_test = counting  # type: ignore[attr-defined]
    started = time.monotonic()
    rounds = 0
    while rounds == 0 or time.monotonic() - started < seconds:
        test()
        rounds += 1
    REPORT.append((name, calls[0], time.monotonic() - started))
    return rounds


_calls = [0]


def bounded(fn: Callable[..., T], *args: Any, size: int, limit: float = SECONDS) -> T:
    """``fn(*args)``, asserting its time (and on some calls its heap) stays within bounds."""
    _calls[0] += 1
    started = time.thread_time()
    result = fn(*args)
    elapsed = time.thread_time() - started
    # linear in the input: a 300 KB page may take its bytes' worth; what is caught is a
    # blow-up (quadratic paths, backtracking), not the cost of reading a big page
    limit = max(limit, limit * size / LINEAR_BYTES)
    if elapsed > limit:
        # once more before failing: a collection or a cold cache can land in one call
        started = time.thread_time()
        fn(*args)
        elapsed = min(elapsed, time.thread_time() - started)
        # and a CPU slowed by its neighbours (shared caches and cores make CPU time grow under
        # load too) raises the bound as much as it slows a fixed piece of work
        limit *= max(1.0, _spin() / _spin_at_start())
    assert elapsed <= limit, f"{fn.__name__} took {elapsed:.2f} s of CPU on {size} bytes"
    if _calls[0] % MEMORY_EVERY == 0:
        tracemalloc.start()
        try:
            fn(*args)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        allowed = MEMORY_FACTOR * size + MEMORY_BASE
        assert peak <= allowed, f"{fn.__name__} peaked at {peak} bytes on {size} bytes"
    return result


def _spin() -> float:
    """CPU seconds of a fixed piece of pure-Python work (the least of three tries)."""
    best = float("inf")
    for _ in range(3):
        started = time.thread_time()
        total = 0
        for i in range(200_000):
            total += i * i
        best = min(best, time.thread_time() - started)
    return best


@functools.cache
def _spin_at_start() -> float:
    """``_spin()`` when the session's first target began."""
    return _spin()


def read_seeds(folder: str, pattern: str = "*") -> list[bytes]:
    return [p.read_bytes() for p in sorted((CORPUS / folder).glob(pattern)) if p.is_file()]


def world_files(pattern: str) -> list[bytes]:
    return [p.read_bytes() for p in sorted(WORLD.rglob(pattern)) if p.is_file()]


def split_http(raw: bytes) -> tuple[dict[str, str], bytes]:
    """Headers and body of a seed kept as an HTTP response (status line, headers, body)."""
    head, _, body = raw.partition(b"\r\n\r\n")
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.decode("latin-1").partition(":")
        headers[key.strip().lower()] = value.strip()
    return headers, body


@st.composite
def mutants(draw: st.DrawFn, seeds: list[bytes], tokens: list[bytes],
            max_size: int = MAX_INPUT) -> bytes:
    """A seed after one to eight mutations (see the module's docstring)."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "token", "bytes", "delete", "splice", "repeat",
                                   "cut"]))
        pos = draw(st.integers(0, len(data)))
        if op == "flip" and data:
            data[pos % len(data)] = draw(st.integers(0, 255))
        elif op == "token":
            data[pos:pos] = draw(st.sampled_from(tokens))
        elif op == "bytes":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[pos:pos + draw(st.integers(1, 256))]
        elif op == "splice":
            other = draw(st.sampled_from(seeds))
            start = draw(st.integers(0, len(other)))
            data[pos:pos] = other[start:start + draw(st.integers(1, 512))]
        elif op == "repeat":
            chunk = bytes(data[pos:pos + draw(st.integers(1, 64))]) or b"<"
            times = draw(st.integers(2, max(2, min(20_000, max_size // len(chunk) // 4))))
            data[pos:pos] = chunk * times
        elif op == "cut":
            del data[pos:]
    return bytes(data[:max_size])
