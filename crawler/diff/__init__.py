"""What changed between two runs of the same zone, as rows of ``changes`` and a report.

The package reads like a comparison:

``choose``
    Which two runs are compared, which are refused, and the notes about the choice.
``sql``
    The set-based SQL that finds each kind of change, in bounded memory.
``compare``
    Runs it all and stores the ``changes`` rows; bounded text diffs of changed pages.
``kinds``
    The change kinds, most important first (:class:`Kind`), and :class:`Change`.
``formats``
    :class:`Diff` and its text, markdown and JSON reports (the JSON keys are listed there).

Callers import from here, so a name can move between these modules without breaking them.
"""

from __future__ import annotations

from .choose import choose_baseline, choose_runs
from .compare import (
    DIFF_MAX_BYTES,
    DIFF_MAX_LINES,
    compare_runs,
    compare_with_previous,
    load_changes,
    refresh_changes,
    text_diff,
)
from .formats import JSON_FORMAT, Diff
from .kinds import HEADLINES, RECORD_KINDS, TITLES, Change, Kind

__all__ = [
    "DIFF_MAX_BYTES",
    "DIFF_MAX_LINES",
    "HEADLINES",
    "JSON_FORMAT",
    "RECORD_KINDS",
    "TITLES",
    "Change",
    "Diff",
    "Kind",
    "choose_baseline",
    "choose_runs",
    "compare_runs",
    "compare_with_previous",
    "load_changes",
    "refresh_changes",
    "text_diff",
]
