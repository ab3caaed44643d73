"""extract() on mutated pages of the lab, through every charset path: it returns, within a
second and memory on the order of the page, and no step of it raises (``extract_error``)."""

from __future__ import annotations

import functools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crawler.crawl.extract import MAX_BODY, extract, js_links
from crawler.lab.faults import BAD_BASE, CONTROL_CHARS, malformed_html
from tests.fuzz.harness import (
    EXAMPLES,
    bounded,
    fuzz_for,
    mutants,
    read_seeds,
    split_http,
    world_files,
)

pytestmark = [pytest.mark.fuzz, pytest.mark.slow]

TOKENS = [b'<base href="http://[::1', b'<base href="', b"\x00", b"\x01", b"\x0b", b"\x1f",
          b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\xed\xa0\x80", b"\xef\xbf\xbf",
          b'<meta charset="', b"euc-kr", b"KPS-9566", b"utf-16", b"x-nonsense", b"iso-2022-kr",
          b'<meta http-equiv="refresh" content="0;url=', b'<a href="', b"javascript:",
          b"&#0;", b"&#x1;", b"&#xD800;", b"<![CDATA[", b"<!--", b"<script>", b"</script>",
          b"<title>", b"<html lang=\"", b"http://", b"//[", b"%", b"\r\n", b"<?xml ",
          b"<svg>", b"<template>", b"<noscript>", b"<body>", b"<h1>", b"<", b">", b'"',
          b'onclick="location.href=\'', b"window.open('", b"\xc0\x80", b"\x80",
          b'<script type="application/ld+json">', b'{"@type": "', b'"@graph": [', b"[[[[",
          b'<meta property="og:site_name" content="']

CHARSETS = [None, "utf-8", "euc-kr", "cp949", "KPS-9566", "ks_c_5601-1987", "utf-16",
            "utf-16-le", "latin-1", "windows-1252", "iso-2022-kr", "shift_jis", "koi8-r",
            "x-lab-nonsense", "", "utf-8'", "\"utf-8\"", "utf-7", "ascii", "gb18030"]


@functools.cache
def seeds() -> list[bytes]:
    """The world's pages, the WARC responses of a lab run, and the fault pages."""
    pages = world_files("*.html") + [split_http(raw)[1] for raw in read_seeds("http")]
    return [p for p in pages if p] + [BAD_BASE, CONTROL_CHARS, malformed_html()[:20_000]]


@st.composite
def headers(draw: st.DrawFn) -> dict[str, str] | None:
    charset = draw(st.sampled_from(CHARSETS))
    if charset is None:
        return draw(st.sampled_from([None, {}, {"content-type": "text/html"}]))
    out = {"content-type": f"text/html; charset={charset}"}
    if draw(st.booleans()):
        out["content-language"] = draw(st.sampled_from(["ko", "en-GB", "x", "ko, en", "??"]))
    return out


URLS = st.sampled_from(["http://kcna.kp/", "https://www.kcna.kp/ko/article/1.html?x=1",
                        "http://127.45.178.99:8080/a/b/", "http://[::1]/x"])


def test_fuzz_extract(fuzz_seconds: float) -> None:
    @EXAMPLES
    @given(body=mutants(seeds(), TOKENS), head=headers(), url=URLS)
    def one(body: bytes, head: dict[str, str] | None, url: str) -> None:
        page = bounded(extract, body, url, head, size=min(len(body), MAX_BODY))
        assert page.extract_error is None, page.extract_error
        for link in page.links:
            assert link.url.startswith(("http://", "https://")) and link.host

    fuzz_for(fuzz_seconds, "extract()", one)


def test_fuzz_javascript_links(fuzz_seconds: float) -> None:
    scripts = [b"location.href='/a.html';", b"window.open('http://kcna.kp/x')",
               b"goPage('news', 12)", b"fn_view(\"123\")", *seeds()[:5]]

    @EXAMPLES
    @given(code=mutants(scripts, TOKENS, max_size=300_000))
    def one(code: bytes) -> None:
        text = code.decode("utf-8", "replace")
        for url in bounded(js_links, text, size=len(code)):
            assert isinstance(url, str)

    fuzz_for(fuzz_seconds, "js_links()", one)
