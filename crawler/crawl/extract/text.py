"""The readable text of a parsed page: parse leniently, drop chrome, keep block structure."""

from __future__ import annotations

import re

import lxml.etree
import lxml.html

MAX_TEXT = 100_000

# What lxml refuses in a text node (C0 controls but tab, LF, CR; surrogates; U+FFFE/U+FFFF):
# kept in the tree, they made main_text's tail assignment raise.
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]+")
SPACES = re.compile(r"[ \t\r\f\v\u00a0\u3000]+")
_DROP_TAGS = ("script", "style", "noscript", "template", "nav", "header", "footer", "aside",
              "form", "select", "button", "svg", "iframe", "object")
_BLOCK_TAGS = ("p", "div", "br", "li", "ul", "ol", "table", "tr", "td", "th", "h1", "h2", "h3",
               "h4", "h5", "h6", "section", "article", "main", "blockquote", "pre", "dd", "dt",
               "title", "hr", "figure", "figcaption")


def text_of(el: lxml.html.HtmlElement) -> str:
    try:
        return SPACES.sub(" ", el.text_content()).strip()[:300]
    except ValueError:
        return ""


def normalise(text: str, limit: int) -> str:
    text = NOT_XML.sub("", text) if NOT_XML.search(text) else text
    lines = (SPACES.sub(" ", line).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)[:limit]


def clean(s: str | None, limit: int = 1000) -> str | None:
    if not s:
        return None
    s = SPACES.sub(" ", s.replace("\n", " ")).strip()
    return s[:limit] or None


def parse(text: str) -> lxml.html.HtmlElement | None:
    parser = lxml.html.HTMLParser(recover=True, huge_tree=False, remove_comments=True,
                                  remove_pis=True, no_network=True)
    cleaned = NOT_XML.sub("", text)
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
        if el.text and NOT_XML.search(el.text):
            el.text = NOT_XML.sub("", el.text)
        if el.tail and NOT_XML.search(el.tail):
            el.tail = NOT_XML.sub("", el.tail)


def main_text(root: lxml.html.HtmlElement) -> str:
    body = root.find("body")
    body = body if body is not None else root
    for el in list(body.iter(*_DROP_TAGS)):
        if el.getparent() is not None:
            el.drop_tree()
    for el in body.iter(*_BLOCK_TAGS):
        el.tail = "\n" + (el.tail or "")
    for el in body.iter("a", "span", "img", "label", "em", "strong", "b", "i"):
        el.tail = " " + (el.tail or "")
    try:
        return normalise(body.text_content(), MAX_TEXT)
    except ValueError:
        return ""
