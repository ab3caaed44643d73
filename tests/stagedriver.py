"""``python -m tests.stagedriver STAGE census-args...``: ``census`` with one stage held open.

The stage named (``-`` for none) does its work, then waits 60 s before it returns, so a test
can interrupt a run in a stage that otherwise takes a second (classify, compare).  Nothing
else changes: the CLI, its signal handling and the crawl process are the real ones.
"""

from __future__ import annotations

import sys
import time
from typing import Any


def main() -> None:
    from crawler import census
    from crawler.cli import cli

    hold, args = sys.argv[1], sys.argv[2:]
    real = census.STAGE_FUNCTIONS.get(hold)
    if real is not None:

        def held(*a: Any) -> Any:
            result = real(*a)
            time.sleep(60)
            return result

        census.STAGE_FUNCTIONS[hold] = held
    cli.main(args, prog_name="census")


if __name__ == "__main__":
    main()
