"""The script sandbox on mutated pages of the lab's script-driven sites: ``navigations``
returns within its own CPU bound (``PAGE_SECONDS`` and one call's ``CALL_SECONDS``), whatever
the scripts and handlers do, and every navigation it reports is a string."""

from __future__ import annotations

import functools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crawler.crawl.scripts import CALL_SECONDS, PAGE_SECONDS, navigations
from tests.fuzz.harness import EXAMPLES, bounded, fuzz_for, mutants, world_files

pytestmark = [pytest.mark.fuzz, pytest.mark.slow]

TOKENS = [b"<script>", b"</script>", b'onclick="', b'onchange="', b'href="javascript:',
          b"location.href='", b"location.assign(", b"location.replace(", b"window.open(",
          b"document.location=", b"document.write('<a href=", b".submit()", b"while(1){",
          b"for(;;)", b"function f(){f()}f();", b"new Array(1e9)", b"'x'.repeat(1<<28)",
          b"while(1) location.href='/a'+Math.random();", b"eval(", b"Function(",
          b"setTimeout(", b"throw 1;", b"}}}}", b"((((", b"\\u0000", b"\x00", b"\xff",
          b"import('", b"await ", b"Proxy", b"Symbol(", b"__proto__", b"constructor",
          b"<select onchange=\"", b"<option value=\"", b"<form method=get action=\""]
URLS = st.sampled_from(["http://minju.com.kp/", "https://www.kcna.kp/ko/index.html",
                        "http://[::1]/x", "http://kcna.kp:99999/"])


@functools.cache
def seeds() -> list[bytes]:
    """Pages of the world that carry scripts or handlers, and the hostile scripts of issue 12."""
    pages = [p for p in world_files("*.html") if b"<script" in p or b"onclick" in p]
    hostile = [b"<script>while(1){}</script>", b"<script>var a=[];for(;;)a.push(a)</script>",
               b"<script>function r(){r()}r()</script>",
               b"<a href=\"javascript:while(1) location.href='/x'\">x</a>"]
    return pages + hostile


def test_fuzz_script_navigations(fuzz_seconds: float) -> None:
    @EXAMPLES
    @given(body=mutants(seeds(), TOKENS, max_size=200_000), url=URLS)
    def one(body: bytes, url: str) -> None:
        text = body.decode("utf-8", "replace")
        found = bounded(navigations, text, url, size=len(body),
                        limit=PAGE_SECONDS + 2 * CALL_SECONDS + 0.5)
        for navigation in found:
            assert isinstance(navigation.url, str)

    fuzz_for(fuzz_seconds, "script navigations()", one)
