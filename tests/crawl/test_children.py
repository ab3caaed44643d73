"""The crawl process's helpers (writer, analysis workers): how they are started."""

from __future__ import annotations

import os
from pathlib import Path

from crawler.crawl.children import HELPER_NICE, reap, spawn


def _nice(pid: int) -> int:
    # /proc/PID/stat: the command is in parentheses; nice is the 19th field
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[16])


def test_a_helper_runs_nicer_than_the_crawl_process() -> None:
    """The reactor keeps a core when the writer or a worker wants one too."""
    process, sock = spawn("crawler.crawl.writer", "30")  # it waits for its first message
    try:
        expected = min(19, os.getpriority(os.PRIO_PROCESS, 0) + HELPER_NICE)
        assert _nice(process.pid) == expected
        assert expected > os.getpriority(os.PRIO_PROCESS, 0) or expected == 19
    finally:
        sock.close()  # end of file: the writer ends
        reap(process)
    assert process.returncode == 0
