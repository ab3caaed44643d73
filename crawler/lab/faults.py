"""The lab's fault endpoints: pages made to hurt a crawler, one per defence it must have.

``LabWeb`` answers any path under ``/_fault/`` on every address and host (when started with
``faults=True``) by calling :func:`serve_fault`; nothing in the world links to them, so
only a test or a page written for it reaches one.  ``FAULTS`` says what each does.  The
big bodies are written block by block rather than built, so serving them costs the lab a
few megabytes, not the 50 MB page or the gigabyte the bomb inflates to.
"""

from __future__ import annotations

import struct
import threading
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .webserver import _Handler

FAULTS = {
    "/_fault/gzip-bomb": "gzip body of about 1 MB that inflates to 1.1 GB of zeros",
    "/_fault/big": "a 50 MB HTML page, sent in chunks with a Content-Length",
    "/_fault/malformed": "broken, deeply nested HTML with NUL bytes and stray tags",
    "/_fault/loop": "redirect loop /_fault/loop -> /_fault/loop2 -> /_fault/loop",
    "/_fault/to-private": "redirect to http://10.0.0.1/",
    "/_fault/wrong-charset": "UTF-8 Korean body served as charset=euc-kr",
    "/_fault/unknown-charset": "body declared as charset=x-lab-nonsense",
    "/_fault/bad-base": "<base href> with an unclosed IPv6 literal (made urljoin raise)",
    "/_fault/control-chars": "NUL and C0 control characters in text, no charset declared",
    "/_fault/drip": "a small page sent one byte every half second",
    "/_fault/hang": "accepts, reads the request, never answers",
    "/_fault/reset": "headers and half the body, then a TCP reset",
}
GZIP_BOMB_SIZE = 1100 * 2**20
BIG_PAGE_SIZE = 50 * 2**20

_KOREAN = ("<html><head><title>조선</title></head>"
           "<body><p>조선민주주의인민공화국</p></body></html>")

# The two pages the issue-15 fuzzer found raising out of extract(): each must keep its row.
BAD_BASE = (b'<html><head><title>bad base</title><base href="http://[::1/x/"></head><body>'
            b'<p>relative links resolve against the page</p>'
            b'<a href="/_fault/ok-after-base">next</a></body></html>')
CONTROL_CHARS = ("<html><head><title>control\x01 chars</title></head><body><p>조선</p>\x00\x01"
                 "tail<b>bold</b>\x0b\x1f<a href='/_fault/ok-after-controls'>next</a>"
                 "</body></html>").encode()


def serve_fault(req: _Handler, path: str, head: bool, stop: threading.Event) -> None:
    """Answer ``path`` (under ``/_fault/``) badly; ``stop`` releases the slow and hanging ones
    when the lab stops."""
    if path == "/_fault/gzip-bomb":
        header, block, count, tail = _gzip_bomb()
        _send_repeated(req, header, block, count, tail, head, encoding="gzip")
    elif path == "/_fault/big":
        chunk = ("<p>" + "조선 " * 340 + "</p>\n").encode()
        count = BIG_PAGE_SIZE // len(chunk)
        _send_repeated(req, b"<html><body>\n", chunk, count, b"</body></html>\n", head)
    elif path == "/_fault/malformed":
        req.send(200, malformed_html(), head=head)
    elif path in ("/_fault/loop", "/_fault/loop2"):
        target = "/_fault/loop2" if path == "/_fault/loop" else "/_fault/loop"
        req.send(302, b"", extra={"Location": target}, head=head)
    elif path == "/_fault/to-private":
        req.send(302, b"", extra={"Location": "http://10.0.0.1/"}, head=head)
    elif path == "/_fault/wrong-charset":
        req.send(200, _KOREAN.encode("utf-8"), "text/html; charset=euc-kr", head=head)
    elif path == "/_fault/unknown-charset":
        req.send(200, _KOREAN.encode("utf-8"), "text/html; charset=x-lab-nonsense", head=head)
    elif path == "/_fault/bad-base":
        req.send(200, BAD_BASE, head=head)
    elif path == "/_fault/control-chars":
        req.send(200, CONTROL_CHARS, "text/html", head=head)
    elif path == "/_fault/drip":
        _drip(req, head, stop)
    elif path == "/_fault/hang":
        stop.wait()
    elif path == "/_fault/reset":
        req.send_half_then_reset(_KOREAN.encode() * 200, "text/html; charset=utf-8")
    else:
        req.send(404, b"<html><body><h1>No such fault</h1></body></html>", head=head)


def _send_repeated(req: _Handler, start: bytes, block: bytes, count: int, end: bytes,
                   head: bool, encoding: str | None = None) -> None:
    """Send ``start + block * count + end`` with its true length, block by block."""
    req.send_response(200)
    req.send_header("Content-Type", "text/html; charset=utf-8")
    if encoding:
        req.send_header("Content-Encoding", encoding)
    req.send_header("Content-Length", str(len(start) + len(block) * count + len(end)))
    req.end_headers()
    if not head:
        req.wfile.write(start)
        for _ in range(count):
            req.wfile.write(block)
        req.wfile.write(end)


def _drip(req: _Handler, head: bool, stop: threading.Event) -> None:
    """A small page, one byte every half second: a crawler needs a total timeout, not only a
    timeout between reads."""
    body = b"<html><body><p>" + b"slow " * 20 + b"</p></body></html>"
    req.send_response(200)
    req.send_header("Content-Type", "text/html; charset=utf-8")
    req.send_header("Content-Length", str(len(body)))
    req.end_headers()
    for i in range(len(body)):
        if head or stop.wait(0.5):
            return
        req.wfile.write(body[i:i + 1])
        req.wfile.flush()


_bomb_cache: tuple[bytes, bytes, int, bytes] | None = None


def _gzip_bomb() -> tuple[bytes, bytes, int, bytes]:
    """(header, block, count, tail): a valid gzip stream built from one repeated deflate block.

    A full flush resets the compressor, so the block for 1 MiB of zeros is the same every time
    and the stream is made without compressing a gigabyte; the CRC of the zeros is computed once.
    """
    global _bomb_cache
    if _bomb_cache is None:
        zeros = bytes(2**20)
        count = GZIP_BOMB_SIZE // len(zeros)
        comp = zlib.compressobj(9, zlib.DEFLATED, 31)
        header = comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH)
        block = comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH)
        final = comp.flush(zlib.Z_FINISH)[:-8]  # drop the trailer: it counts 2 MiB only
        crc = 0
        for _ in range(count + 1):
            crc = zlib.crc32(zeros, crc)
        size = (count + 1) * len(zeros)
        tail = final + struct.pack("<II", crc, size & 0xFFFFFFFF)
        _bomb_cache = (header, block, count, tail)
    return _bomb_cache


def malformed_html() -> bytes:
    """Markup that breaks naive parsers: deep nesting, unclosed tags, NULs, bad attributes."""
    parts = [b"<html><head><title>broken <b>title</title><meta charset='utf-8'",
             b"<body><p>unclosed <a href='/ok.html'>ok<a href=\"/x\0y\">nul</a>",
             b"<div>" * 20000, b"deep", b"</span>" * 500, b"<table><tr><td>cell<td>",
             b"<a href='http://[::1'>bad ipv6</a><a href='ht!tp://x'>bad scheme</a>",
             b"<script>document.write('<a href=\"/s\">');</script>",
             b"<!-- unclosed comment <a href='/hidden'>", b"\xff\xfe garbage \x00\x01"]
    return b"\n".join(parts)


def iter_faults() -> Iterator[tuple[str, str]]:
    """(path, what it does) of every fault endpoint, for docs and ``census lab``."""
    yield from FAULTS.items()


__all__ = ["BAD_BASE", "BIG_PAGE_SIZE", "CONTROL_CHARS", "FAULTS", "GZIP_BOMB_SIZE",
           "iter_faults", "malformed_html", "serve_fault"]
