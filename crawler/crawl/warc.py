"""WARC 1.1 files of a run: warcinfo, request, response, ``dns:`` and revisit records.

Written with warcio, gzip per record, rolled over to a new file at a size limit.  Records are
taken as Scrapy's downloader hands them over, before any decompression: the body is the payload
as received (``Content-Encoding`` kept) but Scrapy has normalised the header names and undone
the chunked transfer coding, so records are faithful but not byte-exact; the warcinfo record
says so, and ``Transfer-Encoding`` is dropped with ``Content-Length`` set to the stored body so
replay tools read them right.
"""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import json
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any, BinaryIO

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from .. import __version__
from ..db import utcnow

NOT_BYTE_EXACT = (
    "Captured by a Scrapy crawler: Scrapy normalises HTTP header names and decodes the "
    "chunked transfer coding, so records are not byte-exact: Transfer-Encoding is removed and "
    "Content-Length recomputed; bodies are the payload as received (Content-Encoding kept)."
)
_HOP_BY_HOP = {b"transfer-encoding", b"content-length"}

GZIP_LEVEL = 6
"""zlib level of the response and request records: gzip's and zlib's default, which wget
and Heritrix write too.  On 200 real HTML documents (20.8 MB) level 9 (warcio's) took 2.5 ms
a document and level 6 1.6 ms, for 0.8 % more bytes; on the crawl bench's pages both cost
the same.  Any level is the same standard gzip member to a reader (warcio, pywb)."""


@dataclass(frozen=True)
class RecordLocation:
    """Where a record was written: ``pages.warc_file`` / ``warc_offset`` / record id."""

    file: str
    offset: int
    record_id: str


def new_record_id() -> str:
    """A WARC-Record-ID, known before its record is written (a record may point to it)."""
    return f"<urn:uuid:{uuid.uuid4()}>"


def payload_digest(body: bytes) -> str:
    """The ``WARC-Payload-Digest`` form: ``sha1:`` + base32."""
    return "sha1:" + base64.b32encode(hashlib.sha1(body).digest()).decode("ascii")


def http_headers_block(
    status: int, headers: list[tuple[str, str]], body_length: int, protocol: str = "HTTP/1.1"
) -> StatusAndHeaders:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    kept = [(k, v) for k, v in headers if k.lower().encode() not in _HOP_BY_HOP]
    kept.append(("Content-Length", str(body_length)))
    return StatusAndHeaders(f"{status} {reason}".strip(), kept, protocol=protocol)


class WarcFiles:
    """The WARC files of one run, under ``<out>/warc/``, rolled over at ``max_size`` bytes."""

    def __init__(
        self, folder: str | Path, prefix: str, info: dict[str, object], max_size: int = 1024**3
    ) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self.info = info
        self.max_size = max_size
        self.sequence = 0
        self.fh: BinaryIO | None = None
        self.position: int | None = None
        """Where the next record starts, kept by ``_write_direct`` (a ``tell()`` of the
        buffered file was two system calls a record); None after warcio wrote: ask the file."""
        self.writer: WARCWriter | None = None
        self.name = ""
        self.files: list[str] = []

    def _open(self) -> None:
        self.close()
        while True:  # never overwrite: an earlier crawl of the run may have used the name
            self.sequence += 1
            self.name = f"{self.prefix}-{self.sequence:05d}.warc.gz"
            try:
                self.fh = open(self.folder / self.name, "xb")  # noqa: SIM115 - held open
            except FileExistsError:
                continue
            break
        self.writer = WARCWriter(self.fh, gzip=True, warc_version="1.1")
        self.files.append(self.name)
        info = {
            "software": f"ccTLD Census {__version__} (Scrapy, warcio)",
            "format": "WARC File Format 1.1",
            "conformsTo": "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
            "description": NOT_BYTE_EXACT,
            **{
                k: v if isinstance(v, str) else json.dumps(v, sort_keys=True)
                for k, v in self.info.items()
            },
        }
        self.writer.write_record(self.writer.create_warcinfo_record(self.name, info))

    def _writer(self) -> WARCWriter:
        if self.fh is None or self._tell() >= self.max_size:
            self._open()
        assert self.writer is not None
        return self.writer

    def _tell(self) -> int:
        assert self.fh is not None
        if self.position is None:
            self.position = self.fh.tell()
        return self.position

    def _write(self, record: object) -> RecordLocation:
        writer = self._writer()
        offset = self._tell()
        self.position = None  # warcio writes to the file itself
        writer.write_record(record)
        record_id = record.rec_headers.get_header("WARC-Record-ID")  # type: ignore[attr-defined]
        return RecordLocation(self.name, offset, record_id)

    def _write_direct(self, url: str, rec_type: str, warc_headers: dict[str, str],
                      http_block: bytes, payload: bytes, record_id: str | None = None,
                      flush: bool = True) -> RecordLocation:
        """A ``response`` or ``request`` record, serialised here: the bytes warcio writes
        (same header order, digests, one gzip member), at a seventh of its cost
        (``tests/crawl/test_warc.py`` checks they are the same), but compressed at
        ``GZIP_LEVEL`` where warcio uses 9."""
        self._writer()
        assert self.fh is not None
        record_id = record_id or new_record_id()
        head = "".join(f"{k}: {v}\r\n" for k, v in warc_headers.items())
        head = (
            f"WARC/1.1\r\n{head}WARC-Type: {rec_type}\r\nWARC-Record-ID: {record_id}\r\n"
            f"WARC-Target-URI: {url}\r\n"
            f"WARC-Payload-Digest: {payload_digest(payload)}\r\n"
            f"WARC-Block-Digest: {payload_digest(http_block)}\r\n"
            f"Content-Type: application/http; msgtype={rec_type}\r\n"
            f"Content-Length: {len(http_block)}\r\n\r\n"
        )
        compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, zlib.MAX_WBITS + 16)
        member = (compressor.compress(head.encode("utf-8")) + compressor.compress(http_block)
                  + compressor.compress(b"\r\n\r\n") + compressor.flush())
        offset = self._tell()
        self.fh.write(member)
        self.position = offset + len(member)
        if flush:
            self.fh.flush()
        return RecordLocation(self.name, offset, record_id)

    def write_exchange(
        self,
        url: str,
        *,
        date: str,
        ip: str | None,
        request_line: str,
        request_headers: list[tuple[str, str]],
        status: int,
        headers: list[tuple[str, str]],
        body: bytes,
        protocol: str = "HTTP/1.1",
        revisit_of: tuple[str, str] | None = None,
        metadata: tuple[str, bytes] | None = None,
    ) -> RecordLocation:
        """Write a response (or a revisit of ``(target_uri, target_date)``) and its request.

        ``metadata`` (content type, payload: a server's certificate) is written first, as a
        ``metadata`` record concurrent to the response, so a response in the file always has
        it (a kill between the two leaves at most a metadata record about nothing).
        Returns the location of the response or revisit record.
        """
        writer = self._writer()
        http = http_headers_block(status, headers, len(body), protocol)
        record_id = new_record_id()
        if metadata is not None:
            self.write_metadata(url, date, record_id, *metadata)
        warc_headers = {"WARC-Date": date}
        if ip:
            warc_headers["WARC-IP-Address"] = ip
        if revisit_of is None:
            # flushed with its request record, which follows at once
            location = self._write_direct(url, "response", warc_headers,
                                          http.to_ascii_bytes() + body, body, record_id,
                                          flush=False)
        else:
            location = self._write(writer.create_revisit_record(
                url,
                payload_digest(body),
                revisit_of[0],
                revisit_of[1],
                http_headers=http,
                warc_headers_dict={**warc_headers, "WARC-Record-ID": record_id},
            ))
        request = StatusAndHeaders(request_line, request_headers, is_http_request=True,
                                   protocol=protocol)
        self._write_direct(url, "request",
                           {"WARC-Date": date, "WARC-Concurrent-To": location.record_id},
                           request.to_ascii_bytes(), b"")
        return location

    def write_metadata(self, url: str, date: str, concurrent_to: str, content_type: str,
                       body: bytes) -> RecordLocation:
        """A ``metadata`` record about the record ``concurrent_to`` (a server's certificate)."""
        writer = self._writer()
        record = writer.create_warc_record(
            url, "metadata", payload=io.BytesIO(body), warc_content_type=content_type,
            warc_headers_dict={"WARC-Date": date, "WARC-Concurrent-To": concurrent_to},
            length=len(body),
        )
        location = self._write(record)
        assert self.fh is not None
        self.fh.flush()
        return location

    def write_dns(
        self, host: str, date: str, server: str | None, lines: list[str]
    ) -> RecordLocation:
        """A ``dns:host`` response record with the answer lines, as Heritrix writes them."""
        writer = self._writer()
        stamp = date.replace("-", "").replace(":", "").replace("T", "").rstrip("Z")[:14]
        body = (stamp + "\n" + "".join(line + "\n" for line in lines)).encode()
        warc_headers = {"WARC-Date": date}
        if server:
            warc_headers["WARC-IP-Address"] = server
        record = writer.create_warc_record(
            f"dns:{host}",
            "response",
            payload=io.BytesIO(body),
            warc_content_type="text/dns",
            warc_headers_dict=warc_headers,
            length=len(body),
        )
        return self._write(record)

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None
            self.position = None
            self.writer = None


def dns_answers(conn: Any, run_id: int, only: list[str]
                ) -> Iterator[tuple[str, str, str | None, list[str]]]:
    """The run's A, AAAA and CNAME answers per host of the domains to crawl (all the run's
    when ``only`` is empty), as the lines of a ``dns:`` record: host, date, server, lines."""
    if only:
        domains = "SELECT DISTINCT value AS domain FROM json_each(?)"
        params: list[Any] = [json.dumps(only), run_id]
    else:
        domains = ("SELECT DISTINCT domain FROM sightings WHERE run_id = ? "
                   "AND domain IS NOT NULL")
        params = [run_id, run_id]
    rows = conn.execute(
        "SELECT r.name, r.ttl, r.type, r.value, r.source FROM dns_records r "
        f"JOIN ({domains}) d ON r.name = d.domain OR r.name = 'www.' || d.domain "
        "WHERE r.run_id = ? AND r.type IN ('A', 'AAAA', 'CNAME') ORDER BY r.name, r.type",
        params,
    )
    date = utcnow()
    for host, group in itertools.groupby(rows, key=lambda row: row[0]):
        records = list(group)
        lines = [f"{name}.\t{ttl or 0}\tIN\t{rtype}\t{value}"
                 for name, ttl, rtype, value, _ in records]
        server = records[0][4]
        yield host, date, (server or "").split("#")[0] or None, lines
