"""Page requisites: the images, stylesheets, scripts and fonts a page needs to look as it did.

A replay of a page without its stylesheet and images is not what the site published.  These
functions find what a page (and each stylesheet, through ``url(...)`` and ``@import``)
references; the spider fetches the same-site ones, within a budget per site, into the WARC,
with a ``requisites`` row each.  Plain regular expressions over the markup: requisites are
looked for on every page, and a second lxml parse of each page would cost more than the scan.
"""

from __future__ import annotations

import re
from urllib.parse import urldefrag, urljoin, urlsplit

MAX_PER_PAGE = 100
MAX_CSS = 500_000

_TAG = re.compile(
    r"<(img|script|link|source|input|video|audio|embed|body|table|td)\b([^>]{0,3000})>", re.I)
_ATTR = re.compile(r"""([a-zA-Z_:][-\w:.]*)\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)""")
_STYLE_BLOCK = re.compile(r"<style\b[^>]*>(.*?)</style>", re.I | re.S)
_STYLE_ATTR = re.compile(r"""\bstyle\s*=\s*("[^"]*"|'[^']*')""", re.I)
_CSS_URL = re.compile(r"""url\(\s*(["']?)([^"')\s]{1,2000})\1\s*\)""", re.I)
_CSS_IMPORT = re.compile(r"""@import\s+(?:url\(\s*)?["']?([^"')\s;]{1,2000})""", re.I)
_FONTS = (".woff", ".woff2", ".ttf", ".otf", ".eot")


def kind_of(url: str, default: str = "image") -> str:
    """image, stylesheet, script or font, by the URL's extension when the markup says nothing."""
    path = urlsplit(url).path.lower()
    if path.endswith(".css"):
        return "stylesheet"
    if path.endswith(".js"):
        return "script"
    if path.endswith(_FONTS):
        return "font"
    return default


def _attrs(text: str) -> dict[str, str]:
    return {k.lower(): v.strip("\"'") for k, v in _ATTR.findall(text)}


def _resolve(base: str, ref: str) -> str | None:
    ref = ref.strip()
    if not ref or ref.lower().startswith(("data:", "javascript:", "about:", "#", "blob:")):
        return None
    try:
        url = urldefrag(urljoin(base, ref))[0]
    except ValueError:
        return None
    return url if url.startswith(("http://", "https://")) else None


def page_requisites(html: str, page_url: str) -> list[tuple[str, str]]:
    """``(absolute URL, kind)`` of what the page needs to render, in document order."""
    found: list[tuple[str, str]] = []

    def add(ref: str | None, kind: str) -> None:
        url = _resolve(page_url, ref) if ref else None
        if url and len(found) < MAX_PER_PAGE and all(url != u for u, _ in found):
            found.append((url, kind))

    for tag, rest in _TAG.findall(html):
        tag, attrs = tag.lower(), _attrs(rest)
        if tag == "img" or (tag == "input" and attrs.get("type", "").lower() == "image"):
            add(attrs.get("src"), "image")
            for candidate in attrs.get("srcset", "").split(","):
                add(candidate.strip().split(" ")[0], "image")
        elif tag == "script":
            add(attrs.get("src"), "script")
        elif tag == "link":
            rel = attrs.get("rel", "").lower()
            if "stylesheet" in rel:
                add(attrs.get("href"), "stylesheet")
            elif "icon" in rel:
                add(attrs.get("href"), "image")
            elif "preload" in rel or "prefetch" in rel:
                href = attrs.get("href")
                add(href, attrs.get("as") or (kind_of(href) if href else "other"))
        elif tag in ("source", "video", "audio", "embed"):
            add(attrs.get("src"), "media" if tag != "source" else kind_of(attrs.get("src", ""),
                                                                          "media"))
            add(attrs.get("poster"), "image")
        else:  # body, table, td: the old background attribute
            add(attrs.get("background"), "image")
    for block in _STYLE_BLOCK.findall(html):
        for url, kind in css_references(block, page_url):
            add(url, kind)
    # _STYLE_ATTR costs a page more than the rest of its scan (its \b spoils re's search for
    # a prefix): look for its word first, as re.I sees it (which also takes ſ for s)
    if "style" in html.lower() or "\u017f" in html:
        for value in _STYLE_ATTR.findall(html):
            for url, kind in css_references(value.strip("\"'"), page_url):
                add(url, kind)
    return found


def css_references(css: str, base: str) -> list[tuple[str, str]]:
    """``(absolute URL, kind)`` of the ``@import`` and ``url(...)`` of a stylesheet."""
    css = css[:MAX_CSS]
    found: list[tuple[str, str]] = []
    for ref in _CSS_IMPORT.findall(css):
        url = _resolve(base, ref)
        if url:
            found.append((url, "stylesheet"))
    for _, ref in _CSS_URL.findall(css):
        url = _resolve(base, ref)
        if url and all(url != u for u, _ in found):
            found.append((url, kind_of(url)))
    return found[:MAX_PER_PAGE]
