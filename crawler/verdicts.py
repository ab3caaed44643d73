"""Verdicts given after a run: a run classified again, a domain labelled by hand.

Either changes what the stored comparisons of the runs it touches say, so each refreshes them
(:func:`.diff.refresh_changes`) in the same locked write.  The classify and diff stages stay
apart; this spine module joins them, as ``census.py`` joins the stages of a run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .census import census_writer
from .errors import BadDomainName
from .names import normalize_name

if TYPE_CHECKING:
    from .classify import Classification


def classify_again(db_path: str | Path, run_id: int | None) -> Sequence[Classification]:
    """Classify every site of ``run_id`` (default: the latest) again; its changes follow."""
    from .classify import classify_run
    from .db import get_run
    from .diff import refresh_changes

    with census_writer(db_path, create=False) as db:
        results = classify_run(db, run_id)
        refresh_changes(db, [get_run(db, run_id)["id"]])
    return results


def label_domain(db_path: str | Path, domain: str, label: str | None,
                 note: str | None = None) -> tuple[str, bool]:
    """Label ``domain`` by hand (None: remove its label); its runs' changes follow.

    Returns the domain as the census writes it, and whether it was known: a domain in the
    census when labelling, a label that existed when removing.
    """
    from .classify import labelled_runs, remove_label, set_label
    from .diff import refresh_changes

    name = normalize_name(domain)
    if name is None:
        raise BadDomainName(f"invalid domain name {domain!r}")
    with census_writer(db_path) as db:
        known = remove_label(db, name) if label is None else set_label(db, name, label, note)
        refresh_changes(db, labelled_runs(db, name))
    return name, known
