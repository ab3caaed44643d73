"""Benchmark ``census diff`` on two generated runs of a large zone (default 1,000,000 domains).

Run A is bulk-inserted with ``executemany``; run B is derived from it in SQL with a few
thousand changes of every kind.  ``compare_runs`` then runs in a child process, so its peak
memory (``VmHWM`` of the child) is not the generator's.  A baseline measured in the same
child, a plain scan of every row of the tables the diff reads, shows the ratio.

    python bench/bench_diff.py                 # 1,000,000 domains (about 30 s to generate)
    python bench/bench_diff.py --domains 100000 --keep /tmp/bench.db

Target (issue 5): under 60 s and under 1 GB for 1,000,000 domains.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crawler.db import open_census

SUFFIXES = ("kp", "com.kp", "org.kp", "net.kp", "edu.kp", "gov.kp", "rep.kp")
LABELS = ("news_media", "government", "portal", "business_trade", "culture_arts", "unknown")
TEXT = "The {n}th page of site {d}. " * 8


def domain(i: int) -> str:
    return f"d{i:07d}.{SUFFIXES[i % len(SUFFIXES)]}"


def has_site(i: int) -> bool:
    return i % 10 == 3


def alive(i: int) -> bool:
    """One site in a hundred is down in run 1."""
    return i % 100 != 3


def run_a_rows(n: int) -> dict[str, Iterator[tuple]]:
    """The rows of run 1 (the baseline), as generators for ``executemany``."""
    sites = [i for i in range(n) if has_site(i)]
    return {
        "INSERT INTO domains VALUES (?, ?, 1, 1)": (
            (domain(i), SUFFIXES[i % len(SUFFIXES)]) for i in range(n)
        ),
        "INSERT INTO sightings (run_id, name, domain, method, source) "
        "VALUES (1, ?, ?, 'axfr', '175.45.176.16')": ((domain(i), domain(i)) for i in range(n)),
        "INSERT INTO dns_records (run_id, name, type, ttl, value, source) "
        "VALUES (1, ?, ?, 86400, ?, 'ns')": (
            row
            for i in range(n)
            for row in (
                (domain(i), "NS", f"ns{i % 3}.kptc.kp."),
                *(
                    [(domain(i), "A", f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")]
                    if i % 5 == 0
                    else []
                ),
            )
        ),
        "INSERT INTO sites (run_id, domain, url, http_status, alive, title) "
        "VALUES (1, ?, ?, ?, ?, ?)": (
            (
                domain(i),
                f"http://{domain(i)}/",
                200 if alive(i) else None,
                int(alive(i)),
                f"Site {i}" if alive(i) else None,
            )
            for i in sites
        ),
        "INSERT INTO pages (run_id, domain, url, http_status, sha256, title, text) "
        "VALUES (1, ?, ?, 200, ?, ?, ?)": (
            (
                domain(i),
                f"http://{domain(i)}/{p}",
                _sha(TEXT.format(n=p, d=i)),
                f"Page {p}",
                TEXT.format(n=p, d=i),
            )
            for i in sites
            if alive(i)
            for p in range(2)
        ),
        "INSERT INTO classifications (run_id, domain, label, confidence, source) "
        "VALUES (1, ?, ?, 0.8, 'model')": ((domain(i), LABELS[i % len(LABELS)]) for i in sites),
    }


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def generate(path: Path, n: int) -> Counter[str]:
    """Write runs 1 and 2 of a zone of ``n`` domains; return the changes put into run 2."""
    db = open_census(path)
    conn = db.conn
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -200000")
    for run in (1, 2):
        conn.execute(
            "INSERT INTO runs (id, zone, started_at, finished_at, status) "
            "VALUES (?, 'kp', ?, ?, 'complete')",
            [run, f"2024-0{run}-01T00:00:00Z", f"2024-0{run}-01T06:00:00Z"],
        )
        conn.execute(
            "INSERT INTO zones (run_id, zone, soa_serial, signed, wildcard) "
            "VALUES (?, 'kp', ?, 0, 0)",
            [run, 2024010100 + run],
        )
        for ns, address, outcome in (
            ("ns1.kptc.kp", "175.45.176.15", "refused"),
            ("ns2.kptc.kp", "175.45.176.16", "success" if run == 1 else "refused"),
        ):
            conn.execute(
                "INSERT INTO nameservers (run_id, zone, ns_name, address) VALUES (?, 'kp', ?, ?)",
                [run, ns, address],
            )
            conn.execute(
                "INSERT INTO axfr_attempts (run_id, zone, ns_name, address, outcome, records) "
                "VALUES (?, 'kp', ?, ?, ?, ?)",
                [run, ns, address, outcome, n if outcome == "success" else None],
            )
    for sql, rows in run_a_rows(n).items():
        conn.executemany(sql, rows)
    conn.commit()
    expected: Counter[str] = Counter({"soa_serial": 1, "axfr_closed": 1})
    step = max(n // 1000, 20)
    # Run 2 is run 1 in SQL, minus and plus a few thousand changes.
    removed = f"(CAST(substr(domain, 2, 7) AS INT) % {step} = 1)"
    script = [
        (
            "INSERT INTO sightings (run_id, name, domain, method, source) SELECT 2, name, domain, "
            f"method, source FROM sightings WHERE run_id = 1 AND NOT {removed}"
        ),
        (
            "INSERT INTO dns_records (run_id, name, type, ttl, value, source) SELECT 2, name, "
            "type, ttl, CASE WHEN type = 'A' AND CAST(substr(name, 2, 7) AS INT) "
            f"% {step * 5} = 10 THEN '192.0.2.1' ELSE value END, source FROM dns_records "
            f"WHERE run_id = 1 AND NOT {removed.replace('domain', 'name')}"
        ),
        (
            "INSERT INTO sites (run_id, domain, url, http_status, alive, title) SELECT 2, domain, "
            f"url, http_status, alive, CASE WHEN CAST(substr(domain, 2, 7) AS INT) % {step} = 13 "
            f"THEN 'Retitled' ELSE title END FROM sites WHERE run_id = 1 AND NOT {removed}"
        ),
        (
            f"UPDATE sites SET alive = 0, http_status = NULL, title = NULL WHERE run_id = 2 AND "
            f"CAST(substr(domain, 2, 7) AS INT) % {step} = 23"
        ),
        (
            "UPDATE sites SET alive = 1, http_status = 200, title = 'Back' WHERE run_id = 2 AND "
            "alive = 0 AND CAST(substr(domain, 2, 7) AS INT) % 300 = 3"
        ),
        (
            "INSERT INTO pages (run_id, domain, url, http_status, sha256, title, text, revisit_of) "
            "SELECT 2, domain, url, http_status, CASE WHEN CAST(substr(domain, 2, 7) AS INT) % "
            f"{step} = 33 AND url LIKE '%/0' THEN 'edited' ELSE sha256 END, title, "
            f"CASE WHEN CAST(substr(domain, 2, 7) AS INT) % {step} = 33 AND url LIKE '%/0' "
            "THEN text || ' Edited.' END, CASE WHEN NOT (CAST(substr(domain, 2, 7) AS INT) % "
            f"{step} = 33 AND url LIKE '%/0') THEN id END FROM pages WHERE run_id = 1 "
            f"AND NOT {removed}"
        ),
        (
            "INSERT INTO classifications (run_id, domain, label, confidence, source) SELECT 2, "
            f"domain, CASE WHEN CAST(substr(domain, 2, 7) AS INT) % {step} = 43 THEN 'political' "
            f"ELSE label END, confidence, source FROM classifications WHERE run_id = 1 "
            f"AND NOT {removed}"
        ),
    ]
    for sql in script:
        conn.execute(sql)
    added = [(f"new{i:07d}.com.kp",) for i in range(0, n, step)]
    conn.executemany("INSERT INTO domains VALUES (?, 'com.kp', 2, 2)", added)
    conn.executemany(
        "INSERT INTO sightings (run_id, name, domain, method, source) "
        "VALUES (2, ?1, ?1, 'wordlist', 'kp.txt')",
        added,
    )
    conn.commit()
    counts = {
        "domain_added": len(added),
        "domain_removed": _count(
            conn, f"SELECT count(*) FROM sightings WHERE run_id = 1 AND {removed}"
        ),
    }
    expected.update(counts)
    expected.update(_expected_web(conn))
    # Generation is one huge transaction; a census that has been in use is checkpointed.
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return expected


def _count(conn: sqlite3.Connection, sql: str) -> int:
    return int(conn.execute(sql).fetchone()[0])


def _expected_web(conn: sqlite3.Connection) -> Counter[str]:
    """What the diff should find in run 2, counted independently of the diff's queries."""
    pair = "FROM sites AS o JOIN sites AS n ON n.run_id = 2 AND n.url = o.url WHERE o.run_id = 1"
    return Counter(
        {
            "address": _count(
                conn, "SELECT count(*) FROM dns_records WHERE run_id = 2 AND value = '192.0.2.1'"
            ),
            "site_down": _count(conn, f"SELECT count(*) {pair} AND o.alive AND NOT n.alive"),
            "site_up": _count(conn, f"SELECT count(*) {pair} AND NOT o.alive AND n.alive"),
            "title": _count(
                conn, f"SELECT count(*) {pair} AND o.alive AND n.alive AND n.title = 'Retitled'"
            ),
            "page_changed": _count(
                conn, "SELECT count(*) FROM pages WHERE run_id = 2 AND sha256 = 'edited'"
            ),
            "label_changed": _count(
                conn,
                "SELECT count(*) FROM classifications AS o JOIN "
                "classifications AS n ON n.run_id = 2 AND n.domain = "
                "o.domain JOIN sites AS s ON s.run_id = 1 AND s.domain = "
                "o.domain JOIN sites AS t ON t.run_id = 2 AND t.domain = "
                "o.domain WHERE o.run_id = 1 AND o.label != n.label "
                "AND s.alive = t.alive",
            ),
        }
    )


def _peak_mb() -> float:
    """Peak RSS of this process image; ru_maxrss would also count a fork's copy of the parent."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(path: Path) -> dict[str, float | int | dict[str, int]]:
    """In the child: the baseline scan, then ``compare_runs`` on runs 1 and 2."""
    from crawler.diff import compare_runs

    db = open_census(path)
    start = time.perf_counter()
    scans = {"sightings": "name", "dns_records": "value", "sites": "url", "pages": "url"}
    for table, column in {**scans, "classifications": "label"}.items():
        db.execute(f"SELECT count(*), sum(length({column})) FROM {table}").fetchone()
    baseline = time.perf_counter() - start
    start = time.perf_counter()
    diff = compare_runs(db, 1, 2)
    seconds = time.perf_counter() - start
    stored = db.execute("SELECT count(*) FROM changes WHERE from_run = 1 AND to_run = 2")
    counts = {k: v for k, v in diff.counts().items() if v}
    return {
        "peak_mb": _peak_mb(),
        "seconds": seconds,
        "baseline_seconds": baseline,
        "changes": len(diff.changes),
        "stored": stored.fetchone()[0],
        "counts": counts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="Write the census here and keep it.")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "bench.db"
        if not path.exists():
            start = time.perf_counter()
            expected = generate(path, args.domains)
            print(
                f"generated {args.domains:,} domains x 2 runs in "
                f"{time.perf_counter() - start:.1f} s ({path.stat().st_size / 1e6:.0f} MB)"
            )
        else:
            expected = Counter()
        out = subprocess.run(
            [sys.executable, __file__, "--measure", str(path)],
            check=True,
            capture_output=True,
            text=True,
        )
        result = json.loads(out.stdout)
        peak_mb = result["peak_mb"]
        print(
            f"compare_runs: {result['seconds']:.1f} s, peak RSS {peak_mb:.0f} MB, "
            f"{result['changes']:,} changes ({result['stored']:,} rows in changes)"
        )
        print(
            f"baseline, one plain scan of the tables read: {result['baseline_seconds']:.2f} s "
            f"(diff is {result['seconds'] / max(result['baseline_seconds'], 1e-9):.0f}x)"
        )
        print("changes by kind:", json.dumps(result["counts"]))
        if expected:
            wrong = {
                k: (v, result["counts"].get(k, 0))
                for k, v in expected.items()
                if result["counts"].get(k, 0) != v
            }
            extra = set(result["counts"]) - set(expected)
            print(
                "matches the generated changes"
                if not wrong and not extra
                else f"MISMATCH expected/found: {wrong}, unexpected kinds: {sorted(extra)}"
            )
        ok = result["seconds"] < 60 and peak_mb < 1024
        print("target (< 60 s, < 1 GB):", "met" if ok else "NOT met")


if __name__ == "__main__":
    main()
