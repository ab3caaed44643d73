"""CPU seconds a page of the analysis worker's work, in process (less disturbed by a shared
machine's load than a crawl's wall time).

    python bench/bench_analyse.py [--rounds 5]

``analyse`` (decoding, text, language, the script check, the requisite scan) on the 2,000
pages of ``bench_crawl.py``'s world (half of them declare no language), with the language
identifier the census uses (``crawler/langwalk.py``) and, as the baseline in the same run,
with py3langid's own.  Then the identifiers alone on the real documents of
``crawler/data/corpus`` (many languages and scripts), with their agreement.  Each figure is
the median of ``--rounds`` passes of process CPU time.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_crawl import page_html, site_name
from crawler.crawl.analyse import PageJob, analyse, warm
from crawler.crawl.extract import language

ROOT = Path(__file__).resolve().parent.parent


def jobs(sites: int = 20, pages: int = 100) -> list[PageJob]:
    rng = random.Random(3)
    out = []
    for site in range(sites):
        for n in range(pages):
            body = page_html(rng, site, n, sites, pages).encode()
            out.append(PageJob(f"http://{site_name(site)}/p{n:03d}.html", 200,
                               {"content-type": "text/html"}, body, True,
                               {b"Content-Type": [b"text/html"]}, {}))
    return out


def corpus_texts() -> list[str]:
    texts = []
    for path in sorted((ROOT / "crawler" / "data" / "corpus").rglob("*.jsonl")):
        for line in path.read_text("utf-8").splitlines():
            doc = json.loads(line)
            texts += [doc[k][:2000] for k in ("title", "text") if doc.get(k)]
    return texts


def cpu_per_item(work: Callable[[Any], Any], items: list[Any], rounds: int) -> float:
    """Median CPU milliseconds per item over ``rounds`` passes."""
    times = []
    for _ in range(rounds):
        started = time.process_time()
        for item in items:
            work(item)
        times.append((time.process_time() - started) / len(items) * 1e3)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    warm()
    census = language._identifier()
    reference = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    pages = jobs()
    for job in pages[:100]:
        analyse(job)
    ours = cpu_per_item(analyse, pages, args.rounds)
    language._load_identifier.cache_clear()
    saved = language._load_identifier
    language._load_identifier = lambda: reference  # type: ignore[assignment]
    try:
        theirs = cpu_per_item(analyse, pages, args.rounds)
    finally:
        language._load_identifier = saved
    print(f"analyse, {len(pages)} bench pages: {ours:.3f} ms CPU a page with the census' "
          f"identifier ({type(census).__name__}), {theirs:.3f} ms with py3langid's: "
          f"{ours / theirs:.2f}x")
    texts = corpus_texts()
    fast = cpu_per_item(census.classify, texts, args.rounds)
    slow = cpu_per_item(reference.classify, texts, args.rounds)
    agree = sum(census.classify(t) == reference.classify(t) for t in texts)
    print(f"language identification, {len(texts)} real texts (corpus): {fast:.3f} ms against "
          f"py3langid's {slow:.3f} ms ({fast / slow:.2f}x); same (language, confidence) on "
          f"{agree} of {len(texts)}")


if __name__ == "__main__":
    main()
