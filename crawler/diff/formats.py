"""A comparison's result (:class:`Diff`) and its three reports: text, markdown and JSON.

Rendering is kept apart from the SQL so a report can be made again from stored ``changes``
rows without comparing anything.

The JSON document (``census diff --format json``) has these keys, stable for a given
``format``:

``format``
    ``"census-diff/1"``; a change of keys would change it.
``zone``
    The zone both runs are a census of.
``from_run``, ``to_run``
    The older and newer run: ``id``, ``zone``, ``status``, ``started_at``, ``finished_at``.
``notes``
    Warnings about the comparison (partial runs, runs skipped as baselines), as strings.
``total``
    How many changes there are.
``counts``
    Changes per kind, every kind present (0 when none), in order of importance.
``changes``
    One object per change: ``kind``, ``subject``, ``domain``, ``before``, ``after``,
    ``detail`` (see :class:`~crawler.diff.kinds.Kind` for what each kind puts there).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from .kinds import HEADLINES, ORDER, TITLES, Change, Kind

JSON_FORMAT = "census-diff/1"


@dataclass
class Diff:
    """The changes from ``run_a`` to ``run_b`` and which runs they are."""

    zone: str
    run_a: dict[str, Any]
    run_b: dict[str, Any]
    changes: list[Change]
    notes: list[str] = field(default_factory=list)
    """Warnings about the comparison: partial runs, runs skipped as baselines."""

    def counts(self) -> dict[str, int]:
        """Changes per kind, every kind present (0 when none), in order of importance."""
        counts = {str(kind): 0 for kind in Kind}
        for change in self.changes:
            counts[change.kind] += 1
        return counts

    def by_kind(self) -> list[tuple[Kind, list[Change]]]:
        """The changes grouped by kind, most important kind first: one section each."""
        groups: dict[Kind, list[Change]] = {}
        for change in self.changes:
            groups.setdefault(change.kind, []).append(change)
        return sorted(groups.items(), key=lambda item: ORDER[item[0]])

    def heading(self) -> str:
        return f"Changes in .{self.zone} from {_describe(self.run_a)} to {_describe(self.run_b)}"

    def to_dict(self) -> dict[str, Any]:
        """The JSON document; its keys are stable (``format`` names the version)."""
        return {
            "format": JSON_FORMAT,
            "zone": self.zone,
            "from_run": _run_dict(self.run_a),
            "to_run": _run_dict(self.run_b),
            "notes": list(self.notes),
            "total": len(self.changes),
            "counts": self.counts(),
            "changes": [{**asdict(c), "kind": str(c.kind)} for c in self.changes],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def to_text(self) -> str:
        """Readable, grouped by kind, most important first."""
        lines = [self.heading()]
        lines += [f"note: {note}" for note in self.notes]
        if not self.changes:
            lines.append("No changes.")
            return "\n".join(lines) + "\n"
        lines.append(f"{len(self.changes)} change(s)")
        for kind, changes in self.by_kind():
            title = TITLES[kind]
            if kind in HEADLINES:
                title = f"HEADLINE: {title}"
            lines += ["", f"{title} ({len(changes)})"]
            for change in changes:
                lines.append(f"  {_line(change)}")
                if change.kind == Kind.PAGE_CHANGED and change.detail:
                    lines += [f"    {d}" for d in change.detail.splitlines()]
        return "\n".join(lines) + "\n"

    def to_markdown(self) -> str:
        """A summary table of counts, then one section per kind; page diffs fenced."""
        lines = [f"# {self.heading()}", ""]
        lines += [f"> **Note:** {note}" for note in self.notes]
        if self.notes:
            lines.append("")
        if not self.changes:
            return "\n".join([*lines, "No changes.", ""])
        lines += ["| kind | changes |", "| --- | ---: |"]
        lines += [f"| `{kind}` | {len(changes)} |" for kind, changes in self.by_kind()]
        for kind, changes in self.by_kind():
            title = f"**{TITLES[kind]}**" if kind in HEADLINES else TITLES[kind]
            lines += ["", f"## {title} ({len(changes)})", ""]
            for change in changes:
                text = _line(change)
                if text[:2] in ("+ ", "- ", "~ "):
                    text = text[2:]
                lines.append(f"- {_md_escape(text)}")
                if change.kind == Kind.PAGE_CHANGED and change.detail:
                    # A longer fence, so a page whose text holds ``` cannot close it early.
                    fence = "````" if "```" in change.detail else "```"
                    lines += ["", f"  {fence}diff"]
                    lines += [f"  {d}" for d in change.detail.splitlines()]
                    lines += [f"  {fence}", ""]
        return "\n".join(lines) + "\n"


def _describe(run: dict[str, Any]) -> str:
    return f"run {run['id']} ({run['status']}, {run['started_at']})"


def _run_dict(run: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "zone", "status", "started_at", "finished_at")
    return {key: run.get(key) for key in keys}


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("*", "\\*").replace("_", "\\_")


def _line(change: Change) -> str:
    """One line of the text report for ``change``."""
    kind, subject, before, after, detail = (
        change.kind,
        change.subject,
        change.before,
        change.after,
        change.detail,
    )
    if kind == Kind.DOMAIN_ADDED:
        return f"+ {subject}  ({detail})"
    if kind == Kind.DOMAIN_REMOVED:
        return f"- {subject}  ({detail})"
    if kind in (Kind.ZONE_ADDED, Kind.PAGE_ADDED, Kind.SITE_UP):
        return f"+ {subject}" + (f"  ({detail})" if detail else "")
    if kind in (Kind.ZONE_REMOVED, Kind.PAGE_REMOVED, Kind.SITE_DOWN):
        return f"- {subject}" + (f"  ({detail})" if detail else "")
    if kind == Kind.PAGE_CHANGED:
        return f"~ {subject}  ({(before or '')[:12]} -> {(after or '')[:12]})"
    suffix = f" {detail}" if kind == Kind.ADDRESS and detail else ""
    return f"{subject}{suffix}: {before if before is not None else '(none)'} -> " + (
        f"{after if after is not None else '(none)'}"
    )
