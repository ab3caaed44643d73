"""Script navigation without a browser: a page's own scripts run in a JavaScript sandbox.

Sites of the .kp zone navigate with ``onclick`` handlers, ``javascript:`` hrefs, ``<select
onchange>`` menus and ``document.write`` menus whose URLs are built by functions the page
defines (inline or in a same-site ``<script src>``).  Regular expressions only see the call
shapes someone already wrote down; here the page's scripts run in QuickJS (measured against
dukpy and V8 through mini-racer in ``bench/bench_scripts.py``) over the stub DOM of
``crawler/data/stubdom.js``, every handler is called with its own arguments, and every
navigation it attempts becomes a link (``how = 'js'``).

The sandbox has no network and no file system; each call has a CPU time limit, the context a
heap and a stack limit, each page a CPU time budget and a cap on handlers and navigations.  A
hostile script (an endless loop, a huge allocation, deep recursion, ``while(1)
location.href = ...``) costs at most those bounds and never raises out of here.

Plain GET forms (an archive picker: a ``<select>`` and a submit button) need no script: each
choice of their options is a link too (``how = 'form'``), bounded.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import re
import time
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import unquote, urlencode, urljoin, urlsplit

import lxml.html

from .extract.text import text_of

log = logging.getLogger(__name__)

CALL_SECONDS = 0.25
"""CPU time limit of one evaluation (a script, a handler)."""
PAGE_SECONDS = 2.0
"""CPU time budget of one page's scripts and handlers together (CPU, not wall clock, so a
busy machine does not cut pages short)."""
HEAP_BYTES = 32 * 1024 * 1024
STACK_BYTES = 1024 * 1024
MAX_HANDLERS = 400
MAX_OPTIONS = 100
MAX_ELEMENTS = 3000
MAX_SCRIPT_BYTES = 500_000
MAX_FORM_URLS = 100
MAX_RESTARTS = 2

HANDLER_ATTRS = ("onclick", "ondblclick", "onmousedown", "onmouseup", "onmouseover",
                 "onmouseout", "onchange", "onsubmit")
_ENGINE_MARKS = (b"<script", b"javascript:", b"onclick", b"ondblclick", b"onmouse", b"onchange",
                 b"onsubmit")
_SCRIPT_SRC = re.compile(rb"""(?i)<script\b[^>]*?\bsrc\s*=\s*["']?([^"'\s>]+)""")
_ATTR_CAP = 2000


@dataclass(frozen=True)
class Navigation:
    """A place a page's scripts or forms lead to (relative or absolute, unresolved)."""

    url: str
    text: str
    tag: str
    how: str = "js"


def needs_engine(body: bytes) -> bool:
    """Whether a page has scripts or handlers at all (most pages of a bench world do not)."""
    low = body.lower()  # one pass in C: cheaper than a case-insensitive regex
    return any(mark in low for mark in _ENGINE_MARKS)


def script_sources(body: bytes, page_url: str) -> list[str]:
    """Absolute URLs of the page's ``<script src>``, in document order (a cheap scan, before
    the page is parsed, to fetch them first)."""
    out = []
    for m in _SCRIPT_SRC.finditer(body):
        try:
            out.append(urljoin(page_url, m.group(1).decode("latin-1").strip()).split("#")[0])
        except ValueError:
            continue
    return out


@functools.cache
def stub_dom() -> str:
    return (resources.files("crawler") / "data" / "stubdom.js").read_text("utf-8")


def _page_location(url: str) -> dict[str, str]:
    parts = urlsplit(url)
    port = str(parts.port or "") if parts.port else ""
    return {"href": url, "protocol": f"{parts.scheme}:", "host": parts.netloc,
            "hostname": parts.hostname or "", "port": port, "pathname": parts.path or "/",
            "search": f"?{parts.query}" if parts.query else "",
            "hash": f"#{parts.fragment}" if parts.fragment else "",
            "origin": f"{parts.scheme}://{parts.netloc}"}


def _describe(root: lxml.html.HtmlElement, page_url: str) -> tuple[list[dict[str, Any]],
                                                                   list[tuple[int, str, int]],
                                                                   list[str]]:
    """Elements scripts can reach, the handlers to call (element index, code, option) and the
    element texts, in document order."""
    elements: list[dict[str, Any]] = []
    handlers: list[tuple[int, str, int]] = []
    forms: dict[Any, int] = {}
    for el in root.iter():
        if not isinstance(el.tag, str) or len(elements) >= MAX_ELEMENTS:
            continue
        tag = el.tag.lower()
        attrs = {k: str(v)[:_ATTR_CAP] for k, v in el.attrib.items()}
        href = attrs.get("href", "")
        codes = [attrs[a] for a in HANDLER_ATTRS if attrs.get(a)]
        in_form = tag in ("input", "select", "textarea", "button")
        if not (codes or "id" in attrs or "name" in attrs or tag == "form" or in_form
                or href.lower().startswith("javascript:")):
            continue
        form = -1
        if in_form:
            owner = next((a for a in el.iterancestors("form")), None)
            form = forms.get(owner, -1)
        index = len(elements)
        d: dict[str, Any] = {"tag": tag, "attrs": attrs, "text": text_of(el)[:200],
                             "href": href, "form": form}
        if tag == "form":
            forms[el] = index
            d["action"] = attrs.get("action") or page_url
        if tag == "select":
            d["options"] = [{"value": o.get("value", text_of(o)), "text": text_of(o)[:200]}
                            for o in el.iter("option")][:MAX_OPTIONS]
        elements.append(d)
        if href.lower().startswith("javascript:"):
            codes.insert(0, unquote(href[len("javascript:"):]))
        for code in codes:
            if tag == "select" and d["options"]:
                handlers += [(index, code, i) for i in range(len(d["options"]))]
            else:
                handlers.append((index, code, -1))
    return elements, handlers[:MAX_HANDLERS], [d["text"] for d in elements]


def _inline_and_external(root: lxml.html.HtmlElement, page_url: str,
                         external: dict[str, str | None]) -> list[str]:
    """The page's scripts in document order: inline text, or the fetched text of a src."""
    out, size = [], 0
    for el in root.iter("script"):
        kind = (el.get("type") or "text/javascript").lower()
        if "javascript" not in kind and "ecmascript" not in kind:
            continue
        src = el.get("src")
        code = external.get(urljoin(page_url, src).split("#")[0]) if src else el.text
        if code and size + len(code) <= MAX_SCRIPT_BYTES:
            out.append(code)
            size += len(code)
    return out


class Sandbox:
    """One QuickJS context for one page, with the stub DOM loaded and the bounds set."""

    def __init__(self, page_url: str, elements: list[dict[str, Any]]) -> None:
        import quickjs

        self.errors = quickjs.JSException
        self.ctx = quickjs.Context()
        self.ctx.set_time_limit(CALL_SECONDS)
        self.ctx.set_memory_limit(HEAP_BYTES)
        self.ctx.set_max_stack_size(STACK_BYTES)
        self.broken = False
        self.ctx.eval(f"var __PAGE = {json.dumps(_page_location(page_url))};"
                      f"var __ELEMENTS = {json.dumps(elements)};")
        self.ctx.eval(stub_dom())

    def run(self, code: str) -> None:
        """Evaluate ``code``; a script error, a time-out or an exhausted heap is the page's
        problem, not the crawl's."""
        if self.broken:
            return
        try:
            self.ctx.eval(code)
        except Exception as exc:  # JSException, StackOverflow, anything the engine raises
            message = str(exc)
            if "out of memory" in message:
                self.broken = True  # a context that ran out of heap is not trusted again
            log.debug("script: %s", message.splitlines()[0] if message else type(exc).__name__)

    def take(self) -> tuple[list[str], list[str]]:
        if self.broken:
            return [], []
        try:
            out = json.loads(self.ctx.eval("__census.take()"))
        except Exception:
            self.broken = True
            return [], []
        return [str(u) for u in out["nav"]], [str(w) for w in out["writes"]]


def navigations(body: str | lxml.html.HtmlElement, page_url: str,
                external: dict[str, str | None] | None = None) -> list[Navigation]:
    """Every place the page's scripts and handlers try to go, and the links of the HTML they
    write; plus the URLs of its plain GET forms."""
    root = body if isinstance(body, lxml.html.HtmlElement) else _parse(body)
    if root is None:
        return []
    out = form_navigations(root, page_url)
    elements, handlers, texts = _describe(root, page_url)
    scripts = _inline_and_external(root, page_url, external or {})
    if not scripts and not handlers:
        return out
    started = time.thread_time()
    writes: list[str] = []

    def collect(sandbox: Sandbox, text: str, tag: str) -> None:
        urls, html = sandbox.take()
        out.extend(Navigation(u, text, tag) for u in urls)
        writes.extend(html)

    def fresh() -> Sandbox | None:
        """A context with the stub DOM and the page's scripts run (again, after a handler
        exhausted the heap of the last one)."""
        try:
            sandbox = Sandbox(page_url, elements)
        except Exception:
            log.debug("script sandbox failed to start for %s", page_url, exc_info=True)
            return None
        for code in scripts:
            sandbox.run(code)
            if time.thread_time() - started > PAGE_SECONDS:
                break
        sandbox.run("__census.deferred()")
        return sandbox

    sandbox = fresh()
    if sandbox is None:
        return out
    collect(sandbox, "", "script")
    restarts = 0
    for index, code, option in handlers:
        if time.thread_time() - started > PAGE_SECONDS:
            break
        if sandbox.broken:
            restarts += 1
            if restarts > MAX_RESTARTS or (sandbox := fresh()) is None:
                break
            sandbox.take()  # what the scripts did is known already
        sandbox.run(f"__census.run({index}, {json.dumps(code)}, {option})")
        element = elements[index]
        text = element["options"][option]["text"] if option >= 0 else texts[index]
        collect(sandbox, text, element["tag"])
    out.extend(_written_links(writes))
    return out


def _parse(text: str) -> lxml.html.HtmlElement | None:
    try:
        return lxml.html.document_fromstring(text)
    except (ValueError, lxml.etree.ParserError):
        return None


def _written_links(writes: list[str]) -> list[Navigation]:
    """Anchors, areas and option values in the HTML that scripts wrote."""
    html = "".join(writes)[:MAX_SCRIPT_BYTES]
    if not html.strip():
        return []
    root = _parse(f"<div>{html}</div>")
    if root is None:
        return []
    out = []
    for el in root.iter("a", "area", "option", "iframe", "frame"):
        ref = el.get("href") or el.get("src") or (el.get("value") if el.tag == "option" else None)
        if ref and not ref.lower().startswith("javascript:"):
            out.append(Navigation(ref, text_of(el)[:200], el.tag))
    return out


def _submittable(form: lxml.html.HtmlElement) -> bool:
    for el in form.iter("input", "button"):
        kind = (el.get("type") or ("submit" if el.tag == "button" else "text")).lower()
        if kind in ("submit", "image"):
            return True
    return False


def form_navigations(root: lxml.html.HtmlElement, page_url: str) -> list[Navigation]:
    """URLs a plain GET form leads to, one for each choice of its options (bounded).  Forms
    with an empty free-text field (search boxes) or a password lead nowhere certain, and a
    form without a submit control is submitted by script only (the handlers find those)."""
    out: list[Navigation] = []
    for form in root.iter("form"):
        if (form.get("method") or "get").lower() != "get" or not _submittable(form):
            continue
        fixed: list[tuple[str, str]] = []
        choices: list[list[tuple[str, str, str]]] = []
        usable = True
        for field in form.iter("input", "select", "textarea"):
            name = field.get("name")
            kind = (field.get("type") or "text").lower() if field.tag == "input" else field.tag
            if kind == "password" or (kind in ("text", "search", "textarea", "email")
                                       and not (field.get("value") or "").strip()):
                usable = False
                break
            if not name or kind in ("submit", "button", "image", "reset", "file"):
                continue
            if kind == "select":
                options = [(name, o.get("value", text_of(o)), text_of(o))
                           for o in field.iter("option")][:MAX_OPTIONS]
                if options:
                    choices.append(options)
            elif kind in ("checkbox", "radio"):
                if field.get("checked") is not None:
                    fixed.append((name, field.get("value", "on")))
            else:
                fixed.append((name, field.get("value", "")))
        if not usable or not (choices or fixed):
            continue
        action = (form.get("action") or page_url).split("#")[0].split("?")[0]
        for combo in itertools.islice(itertools.product(*choices), MAX_FORM_URLS):
            query = urlencode(fixed + [(n, v) for n, v, _ in combo])
            text = " ".join(t for _, _, t in combo)
            out.append(Navigation(f"{action}?{query}", text, "form", "form"))
    return out
