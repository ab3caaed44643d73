"""The readable text of a parsed page: parse leniently, drop chrome, keep block structure."""

from __future__ import annotations

import re

import lxml.etree
import lxml.html

MAX_TEXT = 100_000
MAX_ELEMENTS = 50_000
"""Elements main_text reads: a page of more (a 2 MB table of one-letter cells has 444,000)
is read that far, within the second a page may cost; ordinary pages have a few thousand."""

# What lxml refuses in a text node (C0 controls but tab, LF, CR; surrogates; U+FFFE/U+FFFF):
# kept in the tree, they made main_text's tail assignment raise.
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]+")
_NOT_XML_CHAR = re.compile(NOT_XML.pattern[:-1])
"""Whether there is any: a third of the time of ``NOT_XML.search`` (no run to measure)."""
SPACES = re.compile(r"[ \t\r\f\v\u00a0\u3000]+")
"""Runs that ``collapse_spaces`` makes one space."""
_OTHER_SPACES = "\t\r\f\v\u00a0\u3000"
_TO_SPACE = str.maketrans(dict.fromkeys(_OTHER_SPACES, " "))
_SPACE_RUN = re.compile("  +")
_DROP_TAGS = ("script", "style", "noscript", "template", "nav", "header", "footer", "aside",
              "form", "select", "button", "svg", "iframe", "object")
_BLOCK_TAGS = ("p", "div", "br", "li", "ul", "ol", "table", "tr", "td", "th", "h1", "h2", "h3",
               "h4", "h5", "h6", "section", "article", "main", "blockquote", "pre", "dd", "dt",
               "title", "hr", "figure", "figcaption")
_INLINE_TAGS = ("a", "span", "img", "label", "em", "strong", "b", "i")
_DROP, _BLOCK, _INLINE = frozenset(_DROP_TAGS), frozenset(_BLOCK_TAGS), frozenset(_INLINE_TAGS)


def collapse_spaces(text: str) -> str:
    """``SPACES.sub(" ", text)``, a fifteenth of its cost on a page's text: a page has a
    run of spaces between every two words, and each match cost ``sub`` a replacement, where
    runs of two or more are few (the other spaces become spaces first, when there are any)."""
    if any(c in text for c in _OTHER_SPACES):
        text = text.translate(_TO_SPACE)
    return _SPACE_RUN.sub(" ", text) if "  " in text else text


def text_of(el: lxml.html.HtmlElement) -> str:
    try:
        return collapse_spaces(el.text_content()).strip()[:300]
    except ValueError:
        return ""


def without_not_xml(text: str) -> str:
    return NOT_XML.sub("", text) if _NOT_XML_CHAR.search(text) else text


def normalise(text: str, limit: int) -> str:
    text = without_not_xml(text)
    # one pass over the text, not one per line: no line break is a SPACE once NOT_XML is out
    lines = (line.strip() for line in collapse_spaces(text).splitlines())
    return "\n".join(line for line in lines if line)[:limit]


def clean(s: str | None, limit: int = 1000) -> str | None:
    if not s:
        return None
    s = collapse_spaces(s.replace("\n", " ")).strip()
    return s[:limit] or None


def parse(text: str) -> lxml.html.HtmlElement | None:
    parser = lxml.html.HTMLParser(recover=True, huge_tree=False, remove_comments=True,
                                  remove_pis=True, no_network=True)
    cleaned = without_not_xml(text)
    try:
        root = lxml.html.document_fromstring(cleaned, parser=parser)
    except (lxml.etree.ParserError, ValueError, lxml.etree.XMLSyntaxError):
        return None
    if "&#" in cleaned:
        _scrub(root)
    return root


def _scrub(root: lxml.html.HtmlElement) -> None:
    """Take out of the tree what character references (``&#x1;``) put back in: any text lxml
    refuses would make the next assignment to a text or tail raise (``drop_tree`` too)."""
    for el in root.iter():
        if el.text and _NOT_XML_CHAR.search(el.text):
            el.text = NOT_XML.sub("", el.text)
        if el.tail and _NOT_XML_CHAR.search(el.tail):
            el.tail = NOT_XML.sub("", el.tail)


def main_text(root: lxml.html.HtmlElement) -> str:
    """The body's text without chrome, a line per block: read in one walk, never written
    back (assigning a tail made lxml raise on control characters, and cost a second on a page
    of 400,000 table cells)."""
    body = root.find("body")
    body = body if body is not None else root
    parts: list[str] = []
    elements = 0
    walk = lxml.etree.iterwalk(body, events=("start", "end"))
    for event, el in walk:
        if event == "start":
            elements += 1
            if elements > MAX_ELEMENTS:
                break
            if el.tag in _DROP and el is not body:
                walk.skip_subtree()  # its tail still comes, with its "end"
            elif el.text:
                parts.append(el.text)
            continue
        if el is body:
            break
        if el.tag in _BLOCK:
            parts.append("\n")
        elif el.tag in _INLINE:
            parts.append(" ")
        if el.tail:
            parts.append(el.tail)
    return normalise("".join(parts), MAX_TEXT)
