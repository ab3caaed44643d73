"""``python -m tests.crawl.workerdriver HOLD census-args...``: ``census worker`` whose crawl
freezes at HOLD (the reactor blocked for 60 s, as on a machine that stalled), so a test can
SIGKILL it exactly there.  When ``CENSUS_TEST_HELD`` names a file, it is created as the hold
starts.

HOLD:

- ``claimed``: the spider has just decided to follow a link of a page (``first_time`` said
  it is new), before the page's results are stored;
- ``committed``: the results of a site's first page were just stored (``Leases.commit``),
  before anything else happens in the worker.

The crawl runs in a spawn child, which imports this module again as ``__mp_main__``: the
hold is installed there, from ``CENSUS_TEST_HOLD`` (set by the parent).  Nothing else
changes: the CLI, the worker and its crawl are the real ones.
"""

from __future__ import annotations

import os
import sys
from typing import Any
from urllib.parse import urlsplit

from tests.stagedriver import wait


def install(hold: str) -> None:
    from crawler.crawl import leases

    if hold == "claimed":
        first_time = leases.WorkerSpider.first_time

        def claim_then_wait(self: Any, url: str, domain: str) -> bool:
            new = first_time(self, url, domain)
            if new and urlsplit(url).path not in ("", "/"):
                wait()
            return new

        leases.WorkerSpider.first_time = claim_then_wait  # type: ignore[method-assign]
    elif hold == "committed":
        commit = leases.Leases.commit

        def commit_then_wait(self: Any, meta: dict[str, Any], items: list[Any],
                             *a: Any, **k: Any) -> None:
            page = meta.get("census_start") and "census_requisite" not in meta and items
            commit(self, meta, items, *a, **k)
            if page:
                wait()

        leases.Leases.commit = commit_then_wait  # type: ignore[method-assign]
    else:
        raise SystemExit(f"unknown hold {hold!r}")


if __name__ == "__main__":
    from crawler.cli import cli

    os.environ["CENSUS_TEST_HOLD"] = sys.argv[1]
    cli.main(sys.argv[2:], prog_name="census")
elif __name__ == "__mp_main__" and os.environ.get("CENSUS_TEST_HOLD"):
    install(os.environ["CENSUS_TEST_HOLD"])
