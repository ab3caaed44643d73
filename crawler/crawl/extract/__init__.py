"""What a page says: charset, title, main text, language and links (pure functions, no I/O).

Pages from the network are hostile input: legacy charsets (EUC-KR, the undecodable KPS 9566),
malformed or enormous markup, navigation hidden in JavaScript calls.  ``extract`` never raises
on a body and never stores mojibake: when the charset cannot be decoded the text is ``None``
and ``decode_error`` says why, but the links (ASCII URLs) are still recovered so the crawl goes
on.  Input is capped at ``MAX_BODY`` bytes and every output list is bounded.  One module per
concern: ``decode``, ``text``, ``language``, ``links``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

import lxml.html

from .decode import KPS_9566, decode_body, normalize_charset
from .language import declared_lang, language_by_script, language_of, warm_up
from .links import Link, js_links, page_links
from .text import clean, main_text, parse, text_of

log = logging.getLogger(__name__)

MAX_BODY = 2_000_000
MAX_ANCHORS = 500
MAX_HEADINGS = 50
MAX_SCHEMA_TYPES = 10


@dataclass
class Extracted:
    charset: str | None = None
    decode_error: str | None = None
    title: str | None = None
    text: str | None = None
    description: str | None = None
    headings: list[str] = field(default_factory=list)
    anchors: list[str] = field(default_factory=list)
    lang: str | None = None
    lang_confidence: float | None = None
    lang_source: str | None = None
    links: list[Link] = field(default_factory=list)
    truncated: bool = False
    site_name: str | None = None
    schema_types: list[str] = field(default_factory=list)
    extract_error: str | None = None
    """The step that failed and its exception, when extraction stopped early."""


def extract(body: bytes, url: str, headers: dict[str, str] | None = None) -> Extracted:
    """Everything the census keeps about one HTML page; never raises on the body.

    Whatever a step of extraction raises (a bug that hostile bytes found) is caught here:
    the page keeps what the steps before it found, its links up to the failing one, and
    ``extract_error`` says which step failed and how, so the spider still writes its row.
    """
    out = Extracted(truncated=len(body) > MAX_BODY)
    step = ["decode"]
    try:
        _extract(out, body[:MAX_BODY], url, headers, step)
    except Exception as exc:  # the contract: a page always keeps its row
        out.extract_error = f"{step[0]}: {type(exc).__name__}: {exc}"[:500]
        log.info("extraction of %s stopped at %s", url, out.extract_error)
    return out


def _extract(out: Extracted, body: bytes, url: str, headers: dict[str, str] | None,
             step: list[str]) -> None:
    """Fill ``out`` step by step, naming the step in ``step[0]`` for the error message."""
    text, out.charset, out.decode_error = decode_body(body, headers)
    decodable = text is not None
    if text is None:
        # URLs are ASCII: parse a lossless latin-1 view for links only, keep no text from it.
        text = body.decode("latin-1")
    step[0] = "parse"
    root = parse(text)
    if root is None:
        return
    step[0] = "links"
    page_links(root, url, decodable, out.links)
    step[0] = "language"
    if not decodable:
        declared = declared_lang(root, headers)
        if declared:
            out.lang, out.lang_confidence, out.lang_source = declared, 0.5, "declared"
        return
    step[0] = "title"
    title = root.find(".//title")
    out.title = clean(title.text_content() if title is not None else None, 500)
    for meta in root.iter("meta"):
        key = (meta.get("name") or meta.get("property") or "").lower()
        if key in ("description", "og:description") and not out.description:
            out.description = clean(meta.get("content"), 2000)
        elif key == "og:title" and not out.title:
            out.title = clean(meta.get("content"), 500)
        elif key == "og:site_name" and not out.site_name:
            out.site_name = clean(meta.get("content"), 200)
    out.schema_types = schema_types(root)
    out.headings = [h for el in root.iter("h1", "h2", "h3") if (h := text_of(el))][:MAX_HEADINGS]
    if not out.title and out.headings:
        out.title = out.headings[0]
    out.anchors = [link.text for link in out.links if link.text and link.tag == "a"][:MAX_ANCHORS]
    step[0] = "text"
    out.text = main_text(root)
    step[0] = "language"
    _set_language(out, root, headers)


def schema_types(root: lxml.html.HtmlElement) -> list[str]:
    """The schema.org ``@type``s a page's JSON-LD declares, itself and its publisher first:
    what the site says it is (NewsMediaOrganization, GovernmentOrganization...)."""
    found: list[str] = []
    for script in list(root.iter("script"))[:20]:
        if (script.get("type") or "").strip().lower() != "application/ld+json":
            continue
        try:
            stack = [json.loads((script.text or "")[:100_000])]
        except (ValueError, RecursionError):  # "[[[[..." nests past the parser's stack
            continue
        seen = 0
        while stack and seen < 200:
            node, seen = stack.pop(0), seen + 1
            if isinstance(node, list):
                stack.extend(node)
            elif isinstance(node, dict):
                kind = node.get("@type")
                for name in kind if isinstance(kind, list) else [kind]:
                    if isinstance(name, str) and name and name not in found:
                        found.append(name[:60])
                stack.extend(v for k, v in node.items()
                             if k in ("@graph", "publisher", "author", "mainEntity", "provider"))
    return found[:MAX_SCHEMA_TYPES]


def _set_language(out: Extracted, root: lxml.html.HtmlElement,
                  headers: dict[str, str] | None) -> None:
    """Declared language, unless the script of a long enough text plainly contradicts it
    (.kp pages often keep a template's lang="en" over Korean text).

    With a declaration only the script can overrule it, so the statistical detector (the
    costliest step of extraction) runs only for pages that declare nothing.
    """
    sample = " ".join(filter(None, [out.title, out.text]))
    declared = declared_lang(root, headers)
    if not declared:
        out.lang, out.lang_confidence, out.lang_source = language_of(sample)
        return
    lang, confidence = language_by_script(sample) if sample.strip() else (None, 0.0)
    if lang and lang != declared and confidence >= 0.8 and len(sample) >= 40:
        out.lang, out.lang_confidence, out.lang_source = lang, confidence, "script"
    else:
        out.lang, out.lang_confidence, out.lang_source = declared, 0.9, "declared"


__all__ = ["KPS_9566", "MAX_BODY", "Extracted", "Link", "decode_body", "extract", "js_links",
           "language_of", "normalize_charset", "schema_types", "warm_up"]
