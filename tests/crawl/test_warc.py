"""WARC writing with no crawl: record types, headers, revisits, dns: records, rollover."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator

from crawler.crawl.warc import NOT_BYTE_EXACT, WarcFiles, payload_digest

DATE = "2026-12-01T03:00:00Z"
BODY = "<html><title>로동신문</title></html>".encode()


def exchange(warc: WarcFiles, url: str, body: bytes, **kw: object):
    return warc.write_exchange(
        url,
        date=DATE,
        ip="127.45.176.67",
        request_line="GET / HTTP/1.1",
        request_headers=[("Host", "rodong.rep.kp"), ("User-Agent", "ccTLD-Census")],
        status=200,
        headers=[("Content-Type", "text/html"), ("Transfer-Encoding", "chunked")],
        body=body,
        **kw,
    )


def records(folder: Path) -> list:
    found = []
    for path in sorted(folder.glob("*.warc.gz")):
        with path.open("rb") as fh:
            for record in ArchiveIterator(fh):
                found.append((path.name, record.rec_type, record.rec_headers,
                              record.http_headers, record.content_stream().read()))
    return found


def test_an_exchange_is_warcinfo_response_request(tmp_path: Path) -> None:
    warc = WarcFiles(tmp_path, "census-run00001", {"run": 1})
    location = exchange(warc, "http://rodong.rep.kp/", BODY)
    warc.close()
    got = records(tmp_path)
    assert [r[1] for r in got] == ["warcinfo", "response", "request"]
    info = got[0][4].decode()
    assert NOT_BYTE_EXACT.split(":")[0] in info and "WARC File Format 1.1" in info
    _, _, headers, http, body = got[1]
    assert headers.get_header("WARC-Record-ID") == location.record_id
    assert headers.get_header("WARC-IP-Address") == "127.45.176.67"
    assert headers.get_header("WARC-Date") == DATE
    assert headers.get_header("WARC-Payload-Digest") == payload_digest(BODY)
    assert http.get_header("Transfer-Encoding") is None
    assert http.get_header("Content-Length") == str(len(BODY))
    assert body == BODY
    assert got[2][2].get_header("WARC-Concurrent-To") == location.record_id
    assert location.file == got[1][0]


def test_a_revisit_refers_to_the_earlier_capture(tmp_path: Path) -> None:
    warc = WarcFiles(tmp_path, "census-run00002", {"run": 2})
    exchange(warc, "http://rodong.rep.kp/", BODY, revisit_of=("http://rodong.rep.kp/", DATE))
    warc.close()
    _, kind, headers, _, body = records(tmp_path)[1]
    assert kind == "revisit"
    assert headers.get_header("WARC-Refers-To-Target-URI") == "http://rodong.rep.kp/"
    assert headers.get_header("WARC-Refers-To-Date") == DATE
    assert "identical-payload-digest" in headers.get_header("WARC-Profile")
    assert body == b""


def test_dns_records_as_heritrix_writes_them(tmp_path: Path) -> None:
    warc = WarcFiles(tmp_path, "census-run00001", {"run": 1})
    warc.write_dns("kcna.kp", DATE, "127.45.179.53", ["kcna.kp.\t300\tIN\tA\t127.45.176.71"])
    warc.close()
    _, kind, headers, _, body = records(tmp_path)[1]
    assert kind == "response"
    assert headers.get_header("WARC-Target-URI") == "dns:kcna.kp"
    assert headers.get_header("Content-Type") == "text/dns"
    assert body.decode() == "20261201030000\nkcna.kp.\t300\tIN\tA\t127.45.176.71\n"


def test_files_roll_over_at_the_size_limit_and_pass_warcio_check(tmp_path: Path) -> None:
    warc = WarcFiles(tmp_path, "census-run00001", {"run": 1}, max_size=2000)
    for i in range(6):
        exchange(warc, f"http://rodong.rep.kp/{i}", BODY * 20)
    warc.close()
    files = sorted(tmp_path.glob("*.warc.gz"))
    assert len(files) > 1 and files[0].name == "census-run00001-00001.warc.gz"
    assert all(r[1] == "warcinfo" for r in records(tmp_path) if r[2].get_header("WARC-Filename"))
    check = subprocess.run([sys.executable, "-m", "warcio.cli", "check", *map(str, files)],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_an_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    first = WarcFiles(tmp_path, "census-run00001", {"run": 1})
    exchange(first, "http://rodong.rep.kp/", BODY)
    first.close()
    second = WarcFiles(tmp_path, "census-run00001", {"run": 1})  # same prefix, same second
    location = exchange(second, "http://rodong.rep.kp/news/", BODY)
    second.close()
    assert location.file == "census-run00001-00002.warc.gz"
    uris = [r[2].get_header("WARC-Target-URI") for r in records(tmp_path) if r[1] == "response"]
    assert uris == ["http://rodong.rep.kp/", "http://rodong.rep.kp/news/"]


def test_exchanges_are_the_bytes_warcio_writes(tmp_path: Path, monkeypatch) -> None:
    """Response and request records are serialised by the census itself (a seventh of
    warcio's cost per page): byte for byte what warcio's own writer makes of them, non-ASCII
    URL and header values included."""
    import gzip
    import io
    import itertools
    import uuid
    import zlib

    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    from crawler.crawl.warc import GZIP_LEVEL, http_headers_block

    ids = itertools.count()
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=next(ids)))
    url = "http://rodong.rep.kp/기사?id=1"
    headers = [("Content-Type", "text/html"), ("X-Title", "ü"),
               ("Content-Disposition", "inline; filename=\"ü.html\"")]
    warc = WarcFiles(tmp_path, "census-run00001", {"run": 1})
    warc._open()
    assert warc.fh is not None
    start = warc.fh.tell()
    ids = itertools.count()
    for body in (BODY, b""):
        location = warc.write_exchange(
            url, date=DATE, ip="127.45.176.67", request_line="GET / HTTP/1.1",
            request_headers=[("Host", "rodong.rep.kp"), ("User-Agent", "ccTLD-Census")],
            status=200, headers=[*headers, ("Transfer-Encoding", "chunked")], body=body)
    warc.fh.flush()
    ours = (tmp_path / location.file).read_bytes()[start:]
    warc.close()

    ids = itertools.count()
    theirs = io.BytesIO()
    # warcio compresses at level 9, the census at GZIP_LEVEL: the same writer at that level
    compressobj = zlib.compressobj
    monkeypatch.setattr(zlib, "compressobj",
                        lambda level, *args: compressobj(GZIP_LEVEL, *args))
    writer = WARCWriter(theirs, gzip=True, warc_version="1.1")
    for body in (BODY, b""):
        response = writer.create_warc_record(
            url, "response", payload=io.BytesIO(body),
            http_headers=http_headers_block(200, headers, len(body)),
            warc_headers_dict={"WARC-Date": DATE, "WARC-IP-Address": "127.45.176.67"})
        writer.write_record(response)
        writer.write_record(writer.create_warc_record(
            url, "request", payload=io.BytesIO(b""),
            http_headers=StatusAndHeaders("GET / HTTP/1.1", [
                ("Host", "rodong.rep.kp"), ("User-Agent", "ccTLD-Census")],
                is_http_request=True, protocol="HTTP/1.1"),
            warc_headers_dict={"WARC-Date": DATE, "WARC-Concurrent-To":
                               response.rec_headers.get_header("WARC-Record-ID")}))
    monkeypatch.undo()
    assert gzip.decompress(ours) == gzip.decompress(theirs.getvalue())
    assert ours == theirs.getvalue()  # one gzip member per record, at the same level
    assert GZIP_LEVEL != 9  # so the level is really the census' own, not warcio's
