"""Benchmark the purpose classifier on real text: sites per second per core, five pages each.

A census of ``--sites`` sites is built from the real corpus (``crawler/data/corpus/real``):
each site gets five pages cut from real documents of its label and language, so the encoder
reads real German, Korean, Arabic... text of realistic length.  Printed: the cold start (the
encoder's load and the training at first use, once per process), the baseline (reading the
sites from the census: ``site_docs``), then ``classify_run`` (read, cues, encoder, decide,
write) in sites per second on one core, its ratio to the baseline, and the peak RSS.

    python bench/bench_purpose.py                 # 1,000 sites x 5 pages
    python bench/bench_purpose.py --sites 200
    python bench/bench_purpose.py --sections      # pages 2-5 are sections the home page's
                                                  # menu links to, each read on its own too

Target (issue 11): at least 20 sites per second per core with five pages each, RSS < 600 MB.
"""

from __future__ import annotations

import os

# one core: keep numpy's BLAS from spreading over the machine
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crawler.classify import classify_run  # noqa: E402
from crawler.classify.model import real_corpus, shipped_model  # noqa: E402
from crawler.classify.signals import site_docs  # noqa: E402
from crawler.db import open_census, start_run  # noqa: E402

PAGES_PER_SITE = 5
PAGE_CHARS = 2500


def build(db_path: Path, sites: int, seed: int = 11, sections: bool = False) -> int:
    """A census with one run of ``sites`` sites of five pages of real text each; with
    ``sections``, the first page is the home page and its menu links to the other four (the
    section rule then reads each of them on its own: the worst case for five pages)."""
    rng = random.Random(seed)
    docs = real_corpus()
    pool: dict[str, list[str]] = defaultdict(list)
    for d in docs:
        pool[d["label"]].append(d["text"])
    db = open_census(db_path)
    run_id = start_run(db, "kp", {"bench": True})
    domains, rows, pages, links = [], [], [], []
    for i in range(sites):
        doc = docs[i % len(docs)]
        domain = f"s{i}.{doc['domain']}"
        domains.append({"name": domain, "suffix": doc["domain"].rsplit(".", 1)[-1],
                        "first_seen_run": run_id, "last_seen_run": run_id})
        rows.append({"run_id": run_id, "domain": domain, "url": f"http://{domain}/",
                     "http_status": 200, "alive": 1, "title": doc["title"],
                     "pages": PAGES_PER_SITE})
        for p in range(PAGES_PER_SITE):
            parts, size = [doc["text"]], len(doc["text"])
            while size < PAGE_CHARS:
                parts.append(rng.choice(pool[doc["label"]]))
                size += len(parts[-1]) + 1
            pages.append({"run_id": run_id, "domain": domain, "url": f"http://{domain}/p{p}",
                          "http_status": 200, "title": f"{doc['title']} - {p}",
                          "description": doc.get("description") or None,
                          "text": " ".join(parts)[:PAGE_CHARS], "depth": min(p, 1)})
            if sections and p:
                links.append((domain, f"http://{domain}/p{p}", f"Section {p}"))
    db["domains"].insert_all(domains)
    db["sites"].insert_all(rows)
    db["pages"].insert_all(pages, batch_size=1000)
    home = {r["domain"]: r["id"] for r in db.query(
        "SELECT domain, id FROM pages WHERE url LIKE '%/p0'")}
    db["links"].insert_all(({"run_id": run_id, "page_id": home[d], "to_url": url,
                             "to_host": d, "internal": 1, "how": "href", "anchor": anchor,
                             "followed": 1} for d, url, anchor in links), batch_size=1000)
    db.conn.commit()
    db.close()
    return run_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=1000)
    parser.add_argument("--sections", action="store_true",
                        help="pages 2-5 of each site are sections its home page links to")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        run_id = build(path, args.sites, sections=args.sections)
        print(f"generated {args.sites} sites x {PAGES_PER_SITE} pages of real text"
              + (", 4 of them sections read on their own" if args.sections else ""))

        t = time.perf_counter()
        shipped_model()
        print(f"cold start (encoder load + training at first use): "
              f"{time.perf_counter() - t:.1f} s, once per process")

        db = open_census(path)
        t = time.perf_counter()
        docs = site_docs(db, run_id)
        base = time.perf_counter() - t
        print(f"baseline, reading the sites (site_docs): {len(docs)} sites in {base:.2f} s")

        cpu, t = time.process_time(), time.perf_counter()
        results = classify_run(db, run_id)
        wall, cpu = time.perf_counter() - t, time.process_time() - cpu
        db.close()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"classify_run: {len(results)} sites in {wall:.1f} s ({cpu:.1f} s CPU): "
              f"{len(results) / wall:.0f} sites/s on one core ({len(results) / cpu:.0f} per "
              f"CPU second), {wall / base:.0f}x the baseline read; peak RSS {rss:.0f} MB")
        labelled = {r.label for r in results}
        print(f"labels given: {len(labelled)}; target >= 20 sites/s, RSS < 600 MB: "
              f"{'met' if len(results) / wall >= 20 and rss < 600 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
