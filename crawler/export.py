"""A run's WARCs as one WACZ (Web Archive Collection Zipped) for ReplayWeb.page and pywb.

The package is made by the ``wacz`` package of the Webrecorder project, not by hand: its
CDXJ index of every record, ``pages/pages.jsonl`` (one line per HTML page of the census,
with its title and text, so the replay's search finds what the census found) and
``datapackage.json`` with a digest of every file.  The WARCs are the run's own
(``<out>/warc/census-runNNNNN-*.warc.gz``) plus the earlier runs' files that its revisit
records point at, so an unchanged page still replays.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .db import connect
from .errors import CensusError

log = logging.getLogger(__name__)


class ExportError(CensusError):
    """The WACZ could not be made."""


@dataclass(frozen=True)
class WaczResult:
    path: Path
    warcs: int
    pages: int

    def message(self) -> str:
        return f"wacz: {self.path} ({self.warcs} WARC files, {self.pages} pages)"


def run_warcs(conn: sqlite3.Connection, run_id: int, warc_dir: Path) -> list[Path]:
    """The WARC files of the run, and those of earlier runs its revisits point at."""
    own = sorted(warc_dir.glob(f"census-run{run_id:05d}-*.warc.gz"))
    referred = [name for (name,) in conn.execute(
        "SELECT DISTINCT o.warc_file FROM pages p JOIN pages o ON o.id = p.revisit_of "
        "WHERE p.run_id = ? AND o.warc_file IS NOT NULL", [run_id])]
    extra = [warc_dir / name for name in referred if (warc_dir / name).is_file()]
    return own + sorted(set(extra) - set(own))


def pages_jsonl(conn: sqlite3.Connection, run_id: int) -> tuple[str, int]:
    """``pages.jsonl`` of the run: its HTML pages with title and text, in fetch order."""
    lines = [json.dumps({"format": "json-pages-1.0", "id": "pages",
                         "title": f"Census run {run_id}", "hasText": True})]
    rows = conn.execute(
        "SELECT p.id, p.url, p.fetched_at, p.title, coalesce(p.text, o.text) FROM pages p "
        "LEFT JOIN pages o ON o.id = p.revisit_of WHERE p.run_id = ? AND p.http_status = 200 "
        "AND p.content_type IN ('text/html', 'application/xhtml+xml') ORDER BY p.id", [run_id])
    for page_id, url, fetched_at, title, text in rows:
        entry = {"id": f"census-page-{page_id}", "url": url, "ts": fetched_at}
        if title:
            entry["title"] = title
        if text:
            entry["text"] = text
        lines.append(json.dumps(entry, ensure_ascii=False))
    return "\n".join(lines) + "\n", len(lines) - 1


def export_wacz(db_path: str | Path, run_id: int, out_dir: str | Path | None = None,
                output: str | Path | None = None) -> WaczResult:
    """Package run ``run_id`` as ``<out>/wacz/census-runNNNNN.wacz`` (or ``output``)."""
    from wacz.main import main as wacz_main

    conn = connect(db_path, readonly=True)
    try:
        row = conn.execute("SELECT zone, options FROM runs WHERE id = ?", [run_id]).fetchone()
        if row is None:
            raise ExportError(f"no run {run_id} in {db_path}")
        zone, options = row[0], json.loads(row[1] or "{}")
        out = Path(out_dir or options.get("out_dir") or "output")
        warcs = run_warcs(conn, run_id, out / "warc")
        pages, count = pages_jsonl(conn, run_id)
    finally:
        conn.close()
    if not warcs:
        raise ExportError(f"run {run_id} has no WARC files under {out / 'warc'}")
    target = Path(output) if output else out / "wacz" / f"census-run{run_id:05d}.wacz"
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="census-wacz-") as tmp:
        pages_path = Path(tmp) / "pages.jsonl"
        pages_path.write_text(pages, encoding="utf-8")
        args = ["create", "-o", str(target), "-p", str(pages_path), "-c",
                "--title", f"ccTLD census of .{zone}, run {run_id}",
                "--desc", "Web sites of the zone as the census crawl captured them",
                *map(str, warcs)]
        said = io.StringIO()
        with contextlib.redirect_stdout(said):  # the wacz CLI prints its progress
            code = wacz_main(args)
    if code not in (0, None) or not target.is_file():
        raise ExportError(f"wacz create failed for run {run_id}: {said.getvalue()[-500:]}")
    log.info("run %d: %s", run_id, target)
    return WaczResult(target, len(warcs), count)


def validate_wacz(path: str | Path) -> tuple[bool, str]:
    """``wacz validate`` on ``path``: whether it passes, and what it said."""
    from wacz.main import main as wacz_main

    said = io.StringIO()
    with contextlib.redirect_stdout(said):
        code = wacz_main(["validate", "-f", str(path)])
    return code in (0, None), said.getvalue()
