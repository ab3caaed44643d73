"""Bench the browser capture mode on the lab: pages per minute of headless Chromium.

    python bench/bench_browser.py [--max-pages 30]

The kp lab world is served on loopback; a census run of four script-made or script-navigated
sites (arirang.com.kp, minju.com.kp, tongil.com.kp, kcna.kp) is crawled by the Scrapy stage,
then ``browser_capture`` renders them all (``--browser always``), up to ``--max-pages`` pages
a site: pages per minute, WARC records, peak RSS of the Chromium processes is not included
(Chromium runs in its own processes; the figure is wall time of the whole mode).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crawler.crawl import crawl_run
from crawler.crawl.browser import browser_capture
from crawler.lab import Lab, free_port, load_world

SITES = ["arirang.com.kp", "minju.com.kp", "tongil.com.kp", "kcna.kp"]


def main() -> None:
    from tests.crawlhelp import census_from_world

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-pages", type=int, default=30)
    args = parser.parse_args()
    world = load_world("kp")
    addresses = world.addresses()
    ports = {name: free_port(addresses) for name in ("dns", "http", "https")}
    lab = Lab(world, ports["dns"], ports["http"], ports["https"]).start()
    with tempfile.TemporaryDirectory(prefix="bench-browser-") as folder:
        db_path = Path(folder) / "census.db"
        run_id = census_from_world(db_path, world, SITES)
        try:
            crawl_run(str(db_path), run_id, folder, ["127.0.0.0/8"],
                      {"delay": 0, "max_pages": 200, "http_port": ports["http"],
                       "https_port": ports["https"]})
            started = time.perf_counter()
            result = browser_capture(db_path, run_id, folder, ["127.0.0.0/8"], "always",
                                     ports["http"], ports["https"], max_pages=args.max_pages)
            wall = time.perf_counter() - started
        finally:
            lab.stop()
    print(result.message())
    print(f"browser mode: {result.pages} pages of {len(result.sites)} sites in {wall:.1f} s "
          f"= {result.pages / wall * 60:.0f} pages/min, {result.records} WARC records; "
          f"failed: {len(result.failed)}")


if __name__ == "__main__":
    main()
