"""Write the fuzz seeds that need a running lab: pages from the WARCs of a lab crawl, the
messages of the lab's zone transfers and the answers of its resolver.

Run once, in a network namespace of your own (the lab binds 127.45.176.0/22)::

    unshare -n bash -c 'ip link set lo up; python -m tests.fuzz.make_corpus'

The seeds read straight from the world's files (its pages, robots.txt) need no lab and are
read by the fuzz tests themselves (``tests/fuzz/harness.py``).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import shutil
import tempfile
from pathlib import Path

import dns.message
import dns.query

from crawler.crawl import crawl_run
from crawler.lab import LabDNS, free_port, load_world
from crawler.probe.axfr import drain, spool_messages

CORPUS = Path(__file__).parent / "corpus"
MAX_SEED = 16_000
"""Bytes kept of a seed: a mutator finds as much in the first 16 KB of a page as in all."""


def _write(folder: str, data: bytes, suffix: str) -> None:
    path = CORPUS / folder
    path.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256(data).hexdigest()[:16]
    (path / f"{name}{suffix}").write_bytes(data)


def warc_pages(tmp: Path) -> int:
    """Response records (status line, headers, body) of a crawl of the faults world."""
    from warcio.archiveiterator import ArchiveIterator

    from tests.crawl.test_crawl import FAST, faults_world, start_lab
    from tests.crawlhelp import census_from_world

    world = faults_world(tmp)
    lab, ports = start_lab(world)
    db_path = tmp / "census.db"
    run_id = census_from_world(db_path, world)
    try:
        crawl_run(str(db_path), run_id, str(tmp), ["127.0.0.0/8"],
                  {**FAST, **ports, "max_pages": 4})
    finally:
        lab.stop()
    seen = 0
    for warc in sorted(tmp.rglob("*.warc.gz")):
        with warc.open("rb") as stream:
            for record in ArchiveIterator(stream):
                if record.rec_type != "response" or record.http_headers is None:
                    continue
                ctype = record.http_headers.get_header("Content-Type") or ""
                if "html" not in ctype and "text" not in ctype:
                    continue
                head = record.http_headers.to_str().encode("latin-1")
                body = record.content_stream().read()
                _write("http", head + body[:MAX_SEED], ".http")
                seen += 1
    return seen


def dns_messages(world_name: str = "kp") -> tuple[int, int]:
    """Every message of the lab's transfers (the garbage server's too), and resolver answers."""
    world = load_world(world_name)
    transfers = answers = 0
    with LabDNS(world, free_port(world.addresses())) as server:
        for address, zone in [("127.45.176.16", z) for z in
                              ("kp", "com.kp", "gov.kp", "rep.kp", "tra.kp")] + [
                                  ("127.45.176.9", "kcna.kp"), ("127.45.179.2", "kp")]:
            buffer = io.BytesIO()
            asyncio.run(drain(address, server.port, zone, buffer, timeout=2.0, total=10.0))
            buffer.seek(0)
            for wire in spool_messages(buffer):
                _write("axfr", wire[:MAX_SEED], ".bin")
                transfers += 1
        for name, rdtype in [("kcna.kp", "A"), ("www.kcna.kp", "A"), ("kp", "NS"),
                             ("kp", "SOA"), ("kcna.kp", "MX"), ("kcna.kp", "TXT"),
                             ("nothing.kp", "A"), ("kcna.kp", "AAAA"), ("airkoryo.com.kp", "NS"),
                             ("15.176.45.127.in-addr.arpa", "PTR"), ("star.co.kp", "CAA")]:
            query = dns.message.make_query(name, rdtype, use_edns=0)
            reply = dns.query.udp(query, server.resolver[0], port=server.port, timeout=2)
            _write("dns", reply.to_wire(), ".bin")
            answers += 1
    return transfers, answers


def main() -> None:
    for folder in ("http", "axfr", "dns"):
        shutil.rmtree(CORPUS / folder, ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        pages = warc_pages(Path(tmp))
    transfers, answers = dns_messages()
    print(f"{pages} pages, {transfers} transfer messages, {answers} answers in {CORPUS}")


if __name__ == "__main__":
    main()
