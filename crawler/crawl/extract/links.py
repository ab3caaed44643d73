"""Where a page leads: hrefs, sources, refreshes and the JavaScript link conventions of
``crawler/data/jslinks.toml``, resolved against the page's base and bounded."""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from urllib.parse import urldefrag, urljoin, urlsplit, urlunsplit

import lxml.etree
import lxml.html

from .text import text_of

MAX_LINKS = 2_000
MAX_SCRIPT = 200_000

_SRC_TAGS = ("frame", "iframe", "img", "script", "embed", "source")
_JS_ATTRS = ("onclick", "ondblclick", "onmousedown", "onmouseup", "onmouseover", "onchange")
# Elements with any attribute, found in C (the fastest of the XPaths tried): a page of
# 400,000 table cells took a second to look through attribute by attribute in Python.
_WITH_ATTRIBUTES = lxml.etree.XPath("//*[@*]")
_JS_TAGS = frozenset(("div", "span", "li", "td", "button", "img", "tr"))
_SKIP_SCHEMES = ("javascript:", "mailto:", "tel:", "data:", "about:", "#")
_REFRESH = re.compile(r"""^\s*\d*\s*[;,]?\s*(?:url\s*=\s*)?["']?([^"'\s]+)""", re.I)


@dataclass(frozen=True)
class Link:
    url: str
    host: str
    text: str
    how: str  # 'href' | 'src' | 'js' | 'meta-refresh'
    tag: str = "a"


@dataclass(frozen=True)
class JsPattern:
    name: str
    regex: re.Pattern[str]
    url: str


@functools.cache
def js_patterns() -> tuple[JsPattern, ...]:
    """The JavaScript link conventions of ``crawler/data/jslinks.toml``."""
    data = tomllib.loads((resources.files("crawler") / "data" / "jslinks.toml").read_text("utf-8"))
    return tuple(JsPattern(p["name"], re.compile(p["regex"]), p["url"])
                 for p in data.get("pattern", []))


def js_links(code: str) -> list[str]:
    """Relative or absolute URLs that a JavaScript snippet navigates to."""
    urls = []
    for pattern in js_patterns():
        for m in pattern.regex.finditer(code[:MAX_SCRIPT]):
            groups = {k: (v or "") for k, v in m.groupdict().items()}
            urls.append(pattern.url.format(**groups))
    return urls


def _absolute(base: str, ref: str) -> tuple[str, str] | None:
    ref = ref.strip()
    if not ref or ref.lower().startswith(_SKIP_SCHEMES) or len(ref) > 2000:
        return None
    try:
        url = urldefrag(urljoin(base, ref))[0]
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not host:
        return None
    if not url.startswith(parts.scheme + ":"):
        # urljoin keeps an absolute reference as written ("HTTP://", "\x00https://"), which
        # urlsplit reads leniently; the spider follows only what starts "http:" or "https:"
        url = urlunsplit(parts)
    return url, host


def base_of(root: lxml.html.HtmlElement, url: str) -> str:
    """The URL relative links resolve against: the first ``<base href>`` that makes a valid
    http(s) URL, else the page's own (an unclosed IPv6 literal there made urljoin raise)."""
    for b in root.iter("base"):
        if b.get("href"):
            try:
                base = urljoin(url, b.get("href"))
                if urlsplit(base).scheme in ("http", "https"):
                    return base
            except ValueError:
                pass
            break
    return url


def page_links(root: lxml.html.HtmlElement, url: str, with_text: bool,
               out: list[Link] | None = None) -> list[Link]:
    """The page's links, appended to ``out`` as they are found: a caller that passes its own
    list keeps the links found before anything went wrong."""
    base = base_of(root, url)
    out = [] if out is None else out
    seen: set[tuple[str, str]] = set()

    def add(ref: str | None, text: str, how: str, tag: str) -> None:
        if ref is None or len(out) >= MAX_LINKS:
            return
        resolved = _absolute(base, ref)
        if resolved and (resolved[0], how) not in seen:
            seen.add((resolved[0], how))
            out.append(Link(resolved[0], resolved[1], text if with_text else "", how, tag))

    for el in root.iter("a", "area", *_SRC_TAGS, "meta", "link"):
        if len(out) >= MAX_LINKS:  # 100,000 anchors cost 3 s to read past the bound
            break
        tag = el.tag if isinstance(el.tag, str) else ""
        if tag in ("a", "area"):
            if not el.attrib:  # nothing to follow: spare reading its text
                continue
            text = text_of(el) if tag == "a" else (el.get("alt") or "")
            href = el.get("href") or ""
            if href.lower().startswith("javascript:"):
                for ref in js_links(href):
                    add(ref, text, "js", tag)
            else:
                add(href, text, "href", tag)
            for attr in _JS_ATTRS:
                if el.get(attr):
                    for ref in js_links(el.get(attr)):
                        add(ref, text, "js", tag)
        elif tag == "meta":
            refresh = (el.get("http-equiv") or "").lower() == "refresh"
            if refresh and (m := _REFRESH.match(el.get("content") or "")):
                add(m.group(1), "", "meta-refresh", tag)
        elif tag == "link":
            rel = (el.get("rel") or "").lower()
            if any(r in rel for r in ("alternate", "canonical", "next", "prev")):
                add(el.get("href"), "", "href", tag)
        elif tag == "script" and not el.get("src"):
            for ref in js_links(el.text or ""):
                add(ref, "", "js", tag)
        else:
            add(el.get("src"), el.get("alt") or "", "src", tag)
    for el in _WITH_ATTRIBUTES(root):
        if len(out) >= MAX_LINKS:
            break
        if el.tag not in _JS_TAGS:
            continue
        for attr in _JS_ATTRS:
            if el.get(attr):
                for ref in js_links(el.get(attr)):
                    add(ref, text_of(el), "js", el.tag)
    return out

absolute = _absolute
"""Resolve a reference against a base: (absolute URL, host), or None for what is not http(s)."""
