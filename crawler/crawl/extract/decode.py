"""Which charset a page is in, and its text: BOM, header and meta, in the order the HTML spec
trusts them; the undecodable KPS 9566 is refused rather than guessed."""

from __future__ import annotations

import codecs
import re

MAX_META_SCAN = 4096

KPS_9566 = "KPS-9566"
# Any declaration naming 9566 (KPS-9566, KPS_9566:2003, ks_c_9566...): better to refuse a
# charset than to guess CP949 and store Korean-looking mojibake.
_KPS_ALIASES = re.compile(r"9566")

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_:.\- ]{1,40})""",
                           re.I)
_CT_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([A-Za-z0-9_:.\- ]{1,40})""", re.I)


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
    ctype = header(headers, "content-type")
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


def header(headers: dict[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None
