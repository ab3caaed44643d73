"""Benchmark ``classify_run`` on a generated census of 10,000 pages, on one core.

Pages are built from the shipped evaluation documents, padded to a realistic length with
sentences of other documents of the same label and language (so cue words and n-grams are
the real mix), ten pages per site.  The figures: training time at first use, the seconds and
pages per second of ``classify_run`` (reading sites and pages, classifying, writing rows), and
the evaluation report of the held-out set.

    python bench/bench_classify.py                  # 10,000 pages
    python bench/bench_classify.py --pages 2000 --keep /tmp/bench.db

Target (issue 4): 10,000 pages in under a minute on one core.
"""

from __future__ import annotations

import os

# one core: keep numpy's BLAS from spreading over the machine
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crawler.classify import classify_run, evaluate  # noqa: E402
from crawler.classify.model import read_corpus, shipped_model  # noqa: E402
from crawler.db import open_census, start_run  # noqa: E402

PAGE_CHARS = 2500


def build(db_path: Path, pages: int, per_site: int, seed: int = 4) -> int:
    """A census with one run of ``pages`` pages on ``pages // per_site`` sites."""
    rng = random.Random(seed)
    docs = [d for d in read_corpus(name="eval.jsonl") if d["label"] != "unknown"]
    pool: dict[tuple[str, str], list[str]] = defaultdict(list)
    for d in docs:
        pool[(d["label"], d["lang"])].append(d["text"])
    db = open_census(db_path)
    run_id = start_run(db, "kp", {"bench": True})
    n_sites = max(1, pages // per_site)
    domains, sites, rows = [], [], []
    for i in range(n_sites):
        doc = docs[i % len(docs)]
        domain = f"s{i}-{doc['domain']}"
        domains.append({"name": domain, "suffix": domain.split(".", 1)[1],
                        "first_seen_run": run_id, "last_seen_run": run_id})
        sites.append({"run_id": run_id, "domain": domain, "url": f"http://{domain}/",
                      "http_status": 200, "alive": 1, "title": doc["title"], "pages": per_site})
        same = pool[(doc["label"], doc["lang"])]
        for p in range(per_site):
            parts, size = [doc["description"], doc["text"]], 0
            while size < PAGE_CHARS:
                parts.append(rng.choice(same))
                size += len(parts[-1]) + 1
            rows.append({"run_id": run_id, "domain": domain, "url": f"http://{domain}/p{p}",
                         "http_status": 200, "title": f"{doc['title']} - {p}",
                         "text": " ".join(parts)[:PAGE_CHARS]})
    db["domains"].insert_all(domains)
    db["sites"].insert_all(sites)
    db["pages"].insert_all(rows, batch_size=1000)
    db.conn.commit()
    db.close()
    return run_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=10_000)
    parser.add_argument("--per-site", type=int, default=10)
    parser.add_argument("--keep", type=Path, help="Write the census here and keep it.")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "bench.db"
        path.unlink(missing_ok=True)
        t = time.perf_counter()
        run_id = build(path, args.pages, args.per_site)
        print(f"generated {args.pages} pages on {args.pages // args.per_site} sites "
              f"in {time.perf_counter() - t:.1f} s")

        t = time.perf_counter()
        shipped_model()
        print(f"training at first use: {time.perf_counter() - t:.2f} s")

        db = open_census(path)
        cpu, t = time.process_time(), time.perf_counter()
        results = classify_run(db, run_id)
        wall, cpu = time.perf_counter() - t, time.process_time() - cpu
        db.close()
        print(f"classify_run: {len(results)} sites, {args.pages} pages in {wall:.1f} s "
              f"({cpu:.1f} s CPU): {args.pages / wall:.0f} pages/s, "
              f"{wall * 10_000 / args.pages:.1f} s per 10,000 pages")

    print()
    print(evaluate().format())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
