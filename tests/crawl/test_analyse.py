"""The analysis of a page as plain data: its body decoded exactly as Scrapy's ``response.text``
decodes it, without Scrapy in the worker."""

from __future__ import annotations

from pathlib import Path

from scrapy.http import Headers, TextResponse

from crawler.crawl.analyse import PageJob, response_text

ROOT = Path(__file__).resolve().parents[2]
RUSSIAN = "<p>Народ построил вокзал у реки и школу в каждой деревне.</p>" * 3
KOREAN = "<p>조선인민은 강가에 철도역을 세웠다</p>"


def http_corpus() -> list[tuple[list[tuple[bytes, bytes]], bytes]]:
    """Headers and body of the fuzz corpus' recorded HTTP responses."""
    out = []
    for path in sorted((ROOT / "tests" / "fuzz" / "corpus" / "http").glob("*.http")):
        head, _, body = path.read_bytes().partition(b"\r\n\r\n")
        if not body and b"\n\n" in head:
            head, _, body = head.partition(b"\n\n")
        lines = head.splitlines()[1:]
        out.append(([tuple(v.strip() for v in line.split(b":", 1))  # type: ignore[misc]
                     for line in lines if b":" in line], body))
    return out


def cases() -> list[tuple[list[tuple[bytes, bytes]], bytes]]:
    html = [([(b"Content-Type", b"text/html")], p.read_bytes())
            for p in sorted((ROOT / "crawler" / "data" / "worlds").rglob("*.htm*"))]
    ctype = b"Content-Type"
    return http_corpus() + html + [
        ([(ctype, b"text/html; charset=utf-8")], KOREAN.encode()),
        ([(ctype, b"text/html; charset=iso-8859-1")], b"\xef\xbb\xbf" + KOREAN.encode()),
        ([(ctype, b"text/html")], b"\xff\xfe" + KOREAN.encode("utf-16-le")),
        ([(ctype, b"text/html; charset=euc-kr")], KOREAN.encode("euc-kr")),
        ([(ctype, b"text/html")], b'<meta charset="windows-1251">' + RUSSIAN.encode("cp1251")),
        ([(ctype, b"text/html")], RUSSIAN.encode("cp1251")),  # the detector's guess
        ([], RUSSIAN.encode("koi8-r")),
        ([(ctype, b"text/html")], "<p>café crème brûlée</p>".encode("latin-1")),
        ([(ctype, b"text/html; charset=KPS-9566")], b'<meta charset="euc-kr">'
         + KOREAN.encode("euc-kr")),
        ([(ctype, b"text/html; charset=x-nonsense")], KOREAN.encode()),
        ([(ctype, b"text/html; charset=euc-kr"), (ctype, b"text/html; charset=utf-8")],
         KOREAN.encode()),
        ([(b"content-type", b"text/html; charset=euc-kr")], KOREAN.encode("euc-kr")),
        ([(ctype, b"text/html")], b""),
    ]


def test_the_body_is_decoded_as_scrapy_s_text_response_decodes_it() -> None:
    naive_differs = 0
    for headers, body in cases():
        scrapy_headers = Headers()
        for name, value in headers:
            scrapy_headers.appendlist(name, value)
        url = "http://www.example.kp/page.html"
        expected = TextResponse(url, status=200, headers=scrapy_headers, body=body).text
        job = PageJob(url, 200, {}, body, True, dict(scrapy_headers))
        assert response_text(job) == expected, (headers, body[:200])
        naive_differs += expected != body.decode("utf-8", "replace")
    # the cases reach the rules beyond UTF-8: a decoding that ignored them would fail
    assert naive_differs >= 8
