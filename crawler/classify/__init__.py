"""Purpose of every site: one label from the taxonomy, a confidence, and the evidence why.

``signals`` reads each site of a run from the census, ``cues`` and ``model`` score it,
``combine`` decides, ``evaluate`` measures.  Human labels (``labels``) override the model in
every run until removed.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import sqlite_utils

from ..db import get_run, utcnow
from ..errors import CensusError, check_stop
from .combine import Classification, classify_docs, classify_site, labels
from .cues import taxonomy
from .evaluate import CrossValidation, Report, composition, cross_validate, evaluate
from .model import SiteDoc
from .signals import site_docs

log = logging.getLogger(__name__)

__all__ = [
    "Classification",
    "CrossValidation",
    "Report",
    "SiteDoc",
    "UnknownLabel",
    "classify_docs",
    "classify_run",
    "classify_site",
    "composition",
    "cross_validate",
    "evaluate",
    "remove_label",
    "set_label",
    "summarize",
]


class UnknownLabel(CensusError):
    """Not a label of the taxonomy."""


def _labelled(result: Classification, label: dict[str, Any]) -> Classification:
    """A human label over the model's result; the model's own view stays in the evidence."""
    evidence = {
        "note": label["note"] or "human label",
        "set_at": label["set_at"],
        "model": {"label": result.label, "confidence": round(result.confidence, 3),
                  "secondary": result.secondary, "evidence": result.evidence},
    }
    return Classification(result.domain, label["label"], 1.0, evidence, source="label")


def classify_run(
    db: sqlite_utils.Database,
    run_id: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[Classification]:
    """Classify every site of a run (default: the latest) into ``classifications``.

    The run's previous rows are replaced; a human label wins over the model.
    """
    run_id = get_run(db, run_id)["id"]
    docs = site_docs(db, run_id)
    human = {row["domain"]: row for row in db["labels"].rows}
    results: list[Classification] = []
    batch = 500
    for start in range(0, len(docs), batch):
        check_stop()  # a stop whose KeyboardInterrupt a library swallowed: hours at 1M sites
        results.extend(classify_docs(docs[start:start + batch]))
        if progress:
            progress(min(start + batch, len(docs)), len(docs))
    results = [_labelled(r, human[r.domain]) if r.domain in human else r for r in results]
    with db.conn:
        db.execute("DELETE FROM classifications WHERE run_id = ?", [run_id])
        db["classifications"].insert_all((r.row(run_id) for r in results), alter=False)
    log.info("classified %d sites of run %d", len(results), run_id)
    return results


def summarize(results: Sequence[Classification]) -> str:
    """One line: how many sites got each label, most first."""
    counts = Counter(result.label for result in results)
    ranked = ", ".join(f"{label} {n}" for label, n in counts.most_common())
    return f"classified {len(results)} sites: {ranked or 'none'}"


def set_label(db: sqlite_utils.Database, domain: str, label: str, note: str | None = None) -> bool:
    """Record a human label; apply it to the latest run at once.  True if the census knows it."""
    if label not in taxonomy():
        raise UnknownLabel(f"{label!r} is not a label; choose one of: {', '.join(labels())}")
    domain = domain.strip().lower().rstrip(".")
    row = {"domain": domain, "label": label, "note": note, "set_at": utcnow()}
    with db.conn:
        db["labels"].upsert(row, pk="domain")
        for current in _latest_rows(db, domain):
            if current["source"] == "label":
                previous = json.loads(current["evidence"] or "{}").get("model")
                result = Classification(domain, previous["label"], previous["confidence"],
                                        previous["evidence"], secondary=previous["secondary"])
            else:
                result = Classification(domain, current["label"], current["confidence"],
                                        json.loads(current["evidence"] or "{}"),
                                        secondary=json.loads(current["secondary"] or "[]"))
            db["classifications"].update(current["id"], _labelled(result, row).row(
                current["run_id"]))
    known = db.execute("SELECT 1 FROM domains WHERE name = ?", [domain]).fetchone()
    return known is not None


def remove_label(db: sqlite_utils.Database, domain: str) -> bool:
    """Remove a human label and give the latest run back the model's view; True if it existed."""
    domain = domain.strip().lower().rstrip(".")
    with db.conn:
        existed = db.execute("DELETE FROM labels WHERE domain = ?", [domain]).rowcount > 0
        for current in _latest_rows(db, domain):
            if current["source"] != "label":
                continue
            previous = json.loads(current["evidence"] or "{}").get("model") or {}
            if "label" not in previous:
                continue
            restored = Classification(domain, previous["label"], previous["confidence"],
                                      previous["evidence"], secondary=previous["secondary"])
            db["classifications"].update(current["id"], restored.row(current["run_id"]))
    return existed


def labelled_runs(db: sqlite_utils.Database, domain: str) -> list[int]:
    """The runs whose classification of ``domain`` a label sets or removes (the latest)."""
    row = db.execute(
        "SELECT MAX(run_id) FROM classifications WHERE domain = ?", [domain]
    ).fetchone()
    return [row[0]] if row and row[0] is not None else []


def _latest_rows(db: sqlite_utils.Database, domain: str) -> list[dict[str, Any]]:
    return list(db.execute_returning_dicts(
        "SELECT * FROM classifications WHERE domain = ? AND run_id = "
        "(SELECT MAX(run_id) FROM classifications WHERE domain = ?)", [domain, domain]
    ))
