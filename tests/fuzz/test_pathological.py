"""Pages built to cost the most, at the largest size extract() reads (``MAX_BODY``): each in a
forked child, whose CPU time, Python heap peak and growth of resident memory (lxml's tree
included, which tracemalloc does not see) are asserted against the input's size."""

from __future__ import annotations

import json
import os
import resource
import time
import tracemalloc

import pytest

from crawler.crawl.extract import MAX_BODY, extract

pytestmark = [pytest.mark.fuzz, pytest.mark.slow]

N = MAX_BODY
PAGES = {
    "deep nesting": lambda: b"<div>" * (N // 5),
    "100,000 links": lambda: b"".join(b'<a href="/p%d">l</a>' % i for i in range(N // 20)),
    "one huge attribute": lambda: b'<a href="' + b"a" * N + b'">x</a>',
    "no spaces": lambda: b"<p>" + b"x" * N,
    "50,000 meta tags": lambda: b'<meta name="description" content="d">' * (N // 38),
    "a script of navigations": lambda: b"<script>" + b"location.href='/a';" * (N // 19),
    "control character references": lambda: b"<p>" + b"&#x1;" * (N // 5),
    "NUL bytes": lambda: b"\x00" * N,
    "C0 controls": lambda: bytes(range(32)) * (N // 32),
    "handlers on 50,000 divs": lambda: b"".join(
        b"<div onclick=\"location.href='/x%d'\">t</div>" % i for i in range(N // 40)),
    "unclosed tags": lambda: b"<b>" * (N // 3),
    "Korean text": lambda: ("<p>" + "조선 " * (N // 7)).encode(),
    "undeclared EUC-KR": lambda: ("<p>" + "조선말 " * (N // 7)).encode("euc-kr"),
    "KPS 9566": lambda: b'<meta charset="KPS-9566">' + b"\xb0\xa1" * (N // 2),
    "UTF-16": lambda: "\ufeff".encode("utf-16-le") + "<p>조선</p>".encode("utf-16-le") * (N // 18),
    "unclosed comments": lambda: b"<!--" * (N // 4),
    "444,000 table cells": lambda: b"<table>" + b"<tr><td>x" * (N // 9),
}
CPU_SECONDS = 1.0
HEAP_FACTOR = 32
RSS_FACTOR = 64
SLACK = 16 * 2**20


@pytest.fixture(scope="module", autouse=True)
def language_model() -> None:
    """Loaded once here, so that no child loads it (nor counts it)."""
    extract(b"<p>load the language model before measuring</p>", "http://kcna.kp/")


def measured(body: bytes) -> tuple[float, int, int]:
    """(CPU seconds, Python heap peak, resident memory growth) of extract(body), in a child."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: measure, report, and leave without running pytest's exit
        try:
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            started = time.thread_time()
            extract(body, "http://kcna.kp/", None)
            cpu = time.thread_time() - started
            grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
            tracemalloc.start()
            extract(body, "http://kcna.kp/", None)
            heap = tracemalloc.get_traced_memory()[1]
            os.write(write, json.dumps([cpu, heap, grown]).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    cpu, heap, grown = json.loads(data)
    return cpu, heap, grown


@pytest.mark.parametrize("name", sorted(PAGES))
def test_a_pathological_page_costs_a_second_and_its_size(name: str) -> None:
    body = PAGES[name]()[:MAX_BODY]
    cpu, heap, grown = measured(body)
    print(f"{name}: {len(body) / 1e6:.1f} MB, {cpu:.2f} s CPU, heap {heap / 1e6:.0f} MB, "
          f"RSS +{grown / 1e6:.0f} MB")
    assert cpu <= CPU_SECONDS, f"{cpu:.2f} s of CPU"
    assert heap <= HEAP_FACTOR * len(body) + SLACK, f"Python heap peaked at {heap} bytes"
    assert grown <= RSS_FACTOR * len(body) + SLACK, f"resident memory grew {grown} bytes"
