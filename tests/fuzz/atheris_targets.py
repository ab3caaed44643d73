"""Coverage-guided fuzzing with atheris (libFuzzer) where mutation alone reaches little: the fast
AXFR reader, a byte parser whose branches hang on exact lengths and pointers, and extract().

Run by ``tests/fuzz/test_fuzz_atheris.py`` in a child process (libFuzzer owns the process
and exits it), or by hand::

    python -m tests.fuzz.atheris_targets wire -max_total_time=60 /tmp/corpus-copy

libFuzzer's ``-timeout`` makes any input that takes longer a failure (wall time, so the test
gives it 2 s on a shared machine; the CPU bound of 1 s is asserted by the Hypothesis targets),
and ``-rss_limit_mb`` bounds memory; a failing input is written where ``-artifact_prefix``
says.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["crawler"]):
    from crawler.crawl.extract import extract
    from crawler.probe.axfr import reference_answers
    from crawler.probe.wire import Unusual, read_answers

HEADERS = [None, {"content-type": "text/html"}, {"content-type": "text/html; charset=euc-kr"},
           {"content-type": "text/html; charset=KPS-9566"},
           {"content-type": "text/html; charset=utf-16"},
           {"content-type": "text/html; charset=x-nonsense"}]


def wire(data: bytes) -> None:
    """The fast reader accepts only what dnspython reads the same way."""
    try:
        fast = read_answers(data)
    except Unusual:
        return
    assert reference_answers(data) == (0, fast), "fast reader and dnspython disagree"


def page(data: bytes) -> None:
    """extract() returns, and no step of it raises."""
    if not data:
        return
    headers = HEADERS[data[0] % len(HEADERS)]
    result = extract(data[1:], "http://kcna.kp/a/", headers)
    assert result.extract_error is None, result.extract_error


TARGETS = {"wire": wire, "page": page}

if __name__ == "__main__":
    # the language model loads on the first page that needs it (0.6 s): not inside a timing
    extract(b"<p>the language model is loaded before any input is timed</p>", "http://k.kp/")
    target = TARGETS[sys.argv.pop(1)]
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()
