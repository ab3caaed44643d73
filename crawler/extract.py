"""What a page says: charset, title, main text, language and links (pure functions, no I/O).

Pages from the network are hostile input: legacy charsets (EUC-KR, the undecodable KPS 9566),
malformed or enormous markup, navigation hidden in JavaScript calls.  ``extract`` never raises
on a body and never stores mojibake: when the charset cannot be decoded the text is ``None``
and ``decode_error`` says why, but the links (ASCII URLs) are still recovered so the crawl goes
on.  Input is capped at ``MAX_BODY`` bytes and every output list is bounded.
"""

from __future__ import annotations

import codecs
import functools
import itertools
import re
import threading
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from urllib.parse import urldefrag, urljoin, urlsplit

import lxml.etree
import lxml.html

MAX_BODY = 2_000_000
MAX_TEXT = 100_000
MAX_LINKS = 2_000
MAX_ANCHORS = 500
MAX_HEADINGS = 50
MAX_SCRIPT = 200_000
MAX_META_SCAN = 4096

KPS_9566 = "KPS-9566"
# Any declaration naming 9566 (KPS-9566, KPS_9566:2003, ks_c_9566...): better to refuse a
# charset than to guess CP949 and store Korean-looking mojibake.
_KPS_ALIASES = re.compile(r"9566")

_DROP_TAGS = ("script", "style", "noscript", "template", "nav", "header", "footer", "aside",
              "form", "select", "button", "svg", "iframe", "object")
_BLOCK_TAGS = ("p", "div", "br", "li", "ul", "ol", "table", "tr", "td", "th", "h1", "h2", "h3",
               "h4", "h5", "h6", "section", "article", "main", "blockquote", "pre", "dd", "dt",
               "title", "hr", "figure", "figcaption")
_SRC_TAGS = ("frame", "iframe", "img", "script", "embed", "source")
_JS_ATTRS = ("onclick", "ondblclick", "onmousedown", "onmouseup", "onmouseover", "onchange")
_SKIP_SCHEMES = ("javascript:", "mailto:", "tel:", "data:", "about:", "#")

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_:.\- ]{1,40})""",
                           re.I)
_CT_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([A-Za-z0-9_:.\- ]{1,40})""", re.I)
_REFRESH = re.compile(r"""^\s*\d*\s*[;,]?\s*(?:url\s*=\s*)?["']?([^"'\s]+)""", re.I)
_SPACES = re.compile(r"[ \t\r\f\v\u00a0\u3000]+")


@dataclass(frozen=True)
class Link:
    url: str
    host: str
    text: str
    how: str  # 'href' | 'src' | 'js' | 'meta-refresh'
    tag: str = "a"


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


# ---------------------------------------------------------------- charset

def normalize_charset(name: str | None) -> str | None:
    """The canonical name of a declared charset: KPS 9566 aliases, Python codec names, or the
    declaration as given when Python has no such codec (so the census records what was said)."""
    if not name:
        return None
    name = name.strip().strip("\"'").strip()
    if not name:
        return None
    if _KPS_ALIASES.search(name):
        return KPS_9566
    try:
        return codecs.lookup(name).name.replace("_", "-")
    except LookupError:
        return name


def declared_charsets(body: bytes, headers: dict[str, str] | None) -> list[tuple[str, str]]:
    """(source, charset) pairs in the order the HTML spec trusts them: BOM, header, meta."""
    found: list[tuple[str, str]] = []
    for bom, name in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16"),
                      (codecs.BOM_UTF16_BE, "utf-16")):
        if body.startswith(bom):
            found.append(("bom", name))
    ctype = _header(headers, "content-type")
    if ctype and (m := _CT_CHARSET.search(ctype)):
        found.append(("header", normalize_charset(m.group(1)) or ""))
    if m := _META_CHARSET.search(body[:MAX_META_SCAN]):
        found.append(("meta", normalize_charset(m.group(1).decode("ascii", "replace")) or ""))
    return [(s, c) for s, c in found if c]


def decode_body(body: bytes, headers: dict[str, str] | None = None
                ) -> tuple[str | None, str | None, str | None]:
    """Return (text, charset used — or declared, when undecodable — and the decode error).

    The first declaration wins when it decodes strictly.  KPS 9566 has no Python codec and its
    Hangul block overlaps EUC-KR's byte range with other syllables, so a KPS page is never
    decoded as CP949: unless the body is pure ASCII, the text is ``None``.
    """
    declared = declared_charsets(body, headers)
    errors: list[str] = []
    for source, charset in declared:
        if charset == KPS_9566:
            if body.isascii():
                return body.decode("ascii"), "ascii", None
            return None, KPS_9566, f"undecodable charset {KPS_9566} (declared in {source})"
        try:
            return body.decode(charset), charset, None
        except LookupError:
            errors.append(f"unknown charset {charset!r} (declared in {source})")
        except UnicodeDecodeError:
            errors.append(f"bytes invalid for declared {charset} ({source})")
    note = "; ".join(errors) or None
    for fallback in ("utf-8", "cp949"):
        try:
            return body.decode(fallback), fallback, note
        except UnicodeDecodeError:
            continue
    return body.decode("utf-8", "replace"), "utf-8", (note + "; " if note else "") + \
        "no charset decodes cleanly; invalid bytes replaced"


def _header(headers: dict[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


# ---------------------------------------------------------------- language

_SCRIPT_LANG = {"hangul": "ko", "kana": "ja", "han": "zh", "cyrillic": "ru"}


# Runs of one script, counted in C: a Python loop over every character cost a third of the
# crawl stage's CPU (bench/bench_crawl.py); matching runs, not characters, keeps lists short.
_SCRIPTS = {
    "hangul": re.compile("[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]+"),
    "kana": re.compile("[\u3040-\u30ff\u31f0-\u31ff]+"),
    "han": re.compile("[\u4e00-\u9fff\u3400-\u4dbf\uf900-\ufaff]+"),
    "cyrillic": re.compile("[\u0400-\u04ff]+"),
    # str.isalpha() below U+0250: ASCII letters, ª µ º, Latin-1 letters, Latin Extended-A/B
    "latin": re.compile("[A-Za-z\u00aa\u00b5\u00ba\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f]+"),
}
_LETTER = re.compile(r"[^\W\d_]")


def _script_counts(text: str) -> tuple[dict[str, int], int]:
    sample = text[:20_000]
    ascii_only = sample.isascii()  # the usual Latin page: only one regex to run
    counts = {
        name: 0 if ascii_only and name != "latin" else sum(map(len, regex.findall(sample)))
        for name, regex in _SCRIPTS.items()
    }
    return counts, sum(counts.values())


def language_by_script(text: str) -> tuple[str | None, float]:
    """Language from writing system ratios; Latin script says nothing (returns None).

    Kana anywhere makes Japanese (Japanese mixes kana and kanji; Chinese has no kana);
    Hangul with some Han is still Korean (hanja in older North Korean texts).
    """
    counts, letters = _script_counts(text)
    if letters < 4:
        return None, 0.0
    if counts["kana"] and counts["kana"] + counts["han"] >= letters * 0.5 \
            and counts["kana"] >= counts["hangul"]:
        return "ja", min(1.0, (counts["kana"] + counts["han"]) / letters)
    best = max(("hangul", "han", "cyrillic"), key=lambda k: counts[k])
    ratio = counts[best] / letters
    if ratio < 0.3:
        return None, 0.0
    return _SCRIPT_LANG[best], round(ratio, 3)


# The detector's cost grows with its input; 2,000 characters tell a language as well as more.
DETECTOR_SAMPLE = 2000


def warm_up() -> None:
    """Load the language model in the background, while a crawl starts, not on its first page."""
    threading.Thread(target=_identifier, name="langid-load", daemon=True).start()


_MODEL_LOCK = threading.Lock()


@functools.cache
def _load_identifier():  # py3langid has no type hints
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def _identifier():  # py3langid has no type hints
    """The py3langid model, loaded once (0.6 s, 75 MB) and only when a page needs it."""
    with _MODEL_LOCK:  # the warm-up thread and the first page must not both load it
        return _load_identifier()


def language_of(text: str | None) -> tuple[str | None, float | None, str | None]:
    """(lang, confidence, source) of a text: 'script' for CJK/Cyrillic, else 'detector'."""
    if not text or not text.strip():
        return None, None, None
    lang, conf = language_by_script(text)
    if lang:
        return lang, conf, "script"
    sample = text[:DETECTOR_SAMPLE]
    if next(itertools.islice(_LETTER.finditer(sample), 11, None), None) is None:
        return None, None, None  # fewer than 12 letters
    lang, conf = _identifier().classify(sample)
    return lang, round(float(conf), 3), "detector"


def _declared_lang(root: lxml.html.HtmlElement | None, headers: dict[str, str] | None
                   ) -> str | None:
    value = root.get("lang") or root.get("xml:lang") if root is not None else None
    value = value or _header(headers, "content-language")
    if not value:
        return None
    primary = value.split(",")[0].strip().split("-")[0].split("_")[0].lower()
    return primary if re.fullmatch(r"[a-z]{2,3}", primary) else None


# ---------------------------------------------------------------- links

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
    return url, host


def _text_of(el: lxml.html.HtmlElement) -> str:
    try:
        return _SPACES.sub(" ", el.text_content()).strip()[:300]
    except ValueError:
        return ""


def _links(root: lxml.html.HtmlElement, url: str, with_text: bool) -> list[Link]:
    base = url
    for b in root.iter("base"):
        if b.get("href"):
            base = urljoin(url, b.get("href"))
            break
    out: list[Link] = []
    seen: set[tuple[str, str]] = set()

    def add(ref: str | None, text: str, how: str, tag: str) -> None:
        if ref is None or len(out) >= MAX_LINKS:
            return
        resolved = _absolute(base, ref)
        if resolved and (resolved[0], how) not in seen:
            seen.add((resolved[0], how))
            out.append(Link(resolved[0], resolved[1], text if with_text else "", how, tag))

    for el in root.iter("a", "area", *_SRC_TAGS, "meta", "link"):
        tag = el.tag if isinstance(el.tag, str) else ""
        if tag in ("a", "area"):
            text = _text_of(el) if tag == "a" else (el.get("alt") or "")
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
    for el in root.iter("div", "span", "li", "td", "button", "img", "tr"):
        for attr in _JS_ATTRS:
            if el.get(attr):
                for ref in js_links(el.get(attr)):
                    add(ref, _text_of(el), "js", el.tag)
    return out


# ---------------------------------------------------------------- text

def _normalise(text: str, limit: int) -> str:
    lines = (_SPACES.sub(" ", line).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)[:limit]


def _clean(s: str | None, limit: int = 1000) -> str | None:
    if not s:
        return None
    s = _SPACES.sub(" ", s.replace("\n", " ")).strip()
    return s[:limit] or None


def _parse(text: str) -> lxml.html.HtmlElement | None:
    parser = lxml.html.HTMLParser(recover=True, huge_tree=False, remove_comments=True,
                                  remove_pis=True, no_network=True)
    # lxml refuses str input with an encoding declaration; strip control chars it rejects.
    cleaned = text.replace("\x00", "")
    try:
        return lxml.html.document_fromstring(cleaned, parser=parser)
    except (lxml.etree.ParserError, ValueError, lxml.etree.XMLSyntaxError):
        return None


def _main_text(root: lxml.html.HtmlElement) -> str:
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
        return _normalise(body.text_content(), MAX_TEXT)
    except ValueError:
        return ""


def extract(body: bytes, url: str, headers: dict[str, str] | None = None) -> Extracted:
    """Everything the census keeps about one HTML page; never raises on the body."""
    out = Extracted(truncated=len(body) > MAX_BODY)
    body = body[:MAX_BODY]
    text, out.charset, out.decode_error = decode_body(body, headers)
    decodable = text is not None
    if text is None:
        # URLs are ASCII: parse a lossless latin-1 view for links only, keep no text from it.
        text = body.decode("latin-1")
    root = _parse(text)
    if root is None:
        out.lang, out.lang_confidence, out.lang_source = (None, None, None)
        return out
    out.links = _links(root, url, with_text=decodable)
    if not decodable:
        declared = _declared_lang(root, headers)
        if declared:
            out.lang, out.lang_confidence, out.lang_source = declared, 0.5, "declared"
        return out
    title = root.find(".//title")
    out.title = _clean(title.text_content() if title is not None else None, 500)
    for meta in root.iter("meta"):
        key = (meta.get("name") or meta.get("property") or "").lower()
        if key in ("description", "og:description") and not out.description:
            out.description = _clean(meta.get("content"), 2000)
        elif key == "og:title" and not out.title:
            out.title = _clean(meta.get("content"), 500)
    out.headings = [h for el in root.iter("h1", "h2", "h3") if (h := _text_of(el))][:MAX_HEADINGS]
    if not out.title and out.headings:
        out.title = out.headings[0]
    out.anchors = [link.text for link in out.links if link.text and link.tag == "a"][:MAX_ANCHORS]
    out.text = _main_text(root)
    _set_language(out, root, headers)
    return out


def _set_language(out: Extracted, root: lxml.html.HtmlElement,
                  headers: dict[str, str] | None) -> None:
    """Declared language, unless the script of a long enough text plainly contradicts it
    (.kp pages often keep a template's lang="en" over Korean text).

    With a declaration only the script can overrule it, so the statistical detector (the
    costliest step of extraction) runs only for pages that declare nothing.
    """
    sample = " ".join(filter(None, [out.title, out.text]))
    declared = _declared_lang(root, headers)
    if not declared:
        out.lang, out.lang_confidence, out.lang_source = language_of(sample)
        return
    lang, confidence = language_by_script(sample) if sample.strip() else (None, 0.0)
    if lang and lang != declared and confidence >= 0.8 and len(sample) >= 40:
        out.lang, out.lang_confidence, out.lang_source = lang, confidence, "script"
    else:
        out.lang, out.lang_confidence, out.lang_source = declared, 0.9, "declared"


__all__ = ["KPS_9566", "Extracted", "Link", "decode_body", "extract", "js_links",
           "language_of", "normalize_charset"]
