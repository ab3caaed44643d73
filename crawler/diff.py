"""What changed between two runs of the same zone, as rows of ``changes`` and a report.

Every comparison is set-based SQL over indexed columns (temporary tables, ``EXCEPT`` and
joins), so diffing two censuses of a million domains stays in bounded memory: Python only
ever holds the changes themselves.

Which runs are compared
    With no run given, the last two ``complete`` runs of the zone of the latest complete run.
    One run given as ``run_b``: it and the latest complete run of its zone before it.  Runs
    given explicitly may be ``complete`` or ``partial`` (the report warns that a partial run
    misses what it did not reach, which then shows as removed); ``failed`` and
    ``interrupted`` runs are refused unless ``force`` is set, and a ``running`` run always
    is.  Runs of different zones are refused.  A run that failed or was interrupted is never
    chosen as a default baseline, and the report names the runs it skipped.

Changes are reported at the highest level only: a domain that appeared or disappeared does
not also report its records, site, label and pages; a site that came up or went down does
not also report its status, title, certificate, label and pages.

Change kinds (``changes.kind``), most important first: see :class:`Kind`.
"""

from __future__ import annotations

import difflib
import json
import logging
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

import sqlite_utils

from .db import RunStatus, get_run
from .errors import IncomparableRuns

log = logging.getLogger(__name__)

JSON_FORMAT = "census-diff/1"
DIFF_MAX_LINES = 200
DIFF_MAX_BYTES = 20_000


class Kind(StrEnum):
    """``changes.kind``; the order is the order of importance in reports."""

    AXFR_OPENED = "axfr_opened"
    """A nameserver now gives the zone by transfer (how the 2016 leak was noticed)."""
    AXFR_CLOSED = "axfr_closed"
    """A nameserver that gave the zone by transfer no longer does."""
    DOMAIN_ADDED = "domain_added"
    DOMAIN_REMOVED = "domain_removed"
    ZONE_ADDED = "zone_added"
    """A zone or delegated sub-zone the earlier run did not see."""
    ZONE_REMOVED = "zone_removed"
    SOA_SERIAL = "soa_serial"
    NAMESERVERS = "nameservers"
    """The set of ``ns_name address`` of a zone."""
    ADDRESS = "address"
    """A or AAAA records of a name (``detail`` says which)."""
    MX = "mx"
    TXT = "txt"
    CNAME = "cname"
    DELEGATION = "delegation"
    """NS records of a name below the zone."""
    CAA = "caa"
    SITE_UP = "site_up"
    """Sites are compared per domain (the crawler keeps one ``sites`` row per domain)."""
    SITE_DOWN = "site_down"
    HTTP_STATUS = "http_status"
    TITLE = "title"
    CERTIFICATE = "certificate"
    """Subject, issuer or names of the site's certificate; validity dates alone are not."""
    LABEL_CHANGED = "label_changed"
    PAGE_ADDED = "page_added"
    PAGE_REMOVED = "page_removed"
    PAGE_CHANGED = "page_changed"
    """Content hash differs; ``detail`` is a bounded unified diff of the extracted text."""


HEADLINES = (Kind.AXFR_OPENED, Kind.AXFR_CLOSED)

TITLES: dict[Kind, str] = {
    Kind.AXFR_OPENED: "Zone transfer now possible",
    Kind.AXFR_CLOSED: "Zone transfer no longer possible",
    Kind.DOMAIN_ADDED: "Domains added",
    Kind.DOMAIN_REMOVED: "Domains removed",
    Kind.ZONE_ADDED: "Zones added",
    Kind.ZONE_REMOVED: "Zones removed",
    Kind.SOA_SERIAL: "SOA serial",
    Kind.NAMESERVERS: "Nameservers",
    Kind.ADDRESS: "Addresses",
    Kind.MX: "MX records",
    Kind.TXT: "TXT records",
    Kind.CNAME: "CNAME records",
    Kind.DELEGATION: "Delegations (NS records)",
    Kind.CAA: "CAA records",
    Kind.SITE_UP: "Sites up",
    Kind.SITE_DOWN: "Sites down",
    Kind.HTTP_STATUS: "HTTP status",
    Kind.TITLE: "Site titles",
    Kind.CERTIFICATE: "Certificates",
    Kind.LABEL_CHANGED: "Purpose labels",
    Kind.PAGE_ADDED: "Pages added",
    Kind.PAGE_REMOVED: "Pages removed",
    Kind.PAGE_CHANGED: "Pages changed",
}

RECORD_KINDS: dict[str, Kind] = {
    "A": Kind.ADDRESS,
    "AAAA": Kind.ADDRESS,
    "MX": Kind.MX,
    "TXT": Kind.TXT,
    "CNAME": Kind.CNAME,
    "NS": Kind.DELEGATION,
    "CAA": Kind.CAA,
}
"""DNS record types compared per name; SOA is compared per zone (``soa_serial``)."""

_ORDER = {kind: i for i, kind in enumerate(Kind)}
_COMPARABLE = (RunStatus.COMPLETE, RunStatus.PARTIAL)


@dataclass(frozen=True)
class Change:
    """One row of ``changes``: what changed (``kind``) about what (``subject``)."""

    kind: Kind
    subject: str
    domain: str | None
    before: str | None
    after: str | None
    detail: str | None


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
        groups: dict[Kind, list[Change]] = {}
        for change in self.changes:
            groups.setdefault(change.kind, []).append(change)
        return sorted(groups.items(), key=lambda item: _ORDER[item[0]])

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


# --- choosing the runs ---------------------------------------------------------------------


def _complete_runs(db: sqlite_utils.Database, zone: str) -> list[dict[str, Any]]:
    return list(
        db["runs"].rows_where("zone = ? AND status = ?", [zone, RunStatus.COMPLETE], order_by="id")
    )


def _check(run: dict[str, Any], force: bool) -> str | None:
    """Refuse a run that cannot be compared; return a note for one that can, with caveats."""
    status = run["status"]
    if status == RunStatus.RUNNING:
        raise IncomparableRuns(f"run {run['id']} is still running; wait for it to finish")
    if status in (RunStatus.FAILED, RunStatus.INTERRUPTED) and not force:
        raise IncomparableRuns(
            f"run {run['id']} is {status}: what it did not reach would show as removed; "
            "compare it anyway with --force"
        )
    if status != RunStatus.COMPLETE:
        return f"run {run['id']} is {status}: names and pages it missed show as removed or added"
    return None


def choose_runs(
    db: sqlite_utils.Database,
    run_a: int | None = None,
    run_b: int | None = None,
    *,
    zone: str | None = None,
    force: bool = False,
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """The (older, newer) runs to compare and notes about the choice; see the module doc."""
    if run_b is None and run_a is not None:
        b = get_run(db, run_a)
        newer = [r for r in _complete_runs(db, b["zone"]) if r["id"] > run_a]
        if not newer:
            raise IncomparableRuns(f"no complete run of .{b['zone']} after run {run_a}")
        run_a, run_b = run_a, newer[-1]["id"]
    if run_b is None:
        if zone is None:
            latest = list(
                db["runs"].rows_where(
                    "status = ?", [RunStatus.COMPLETE], order_by="id desc", limit=1
                )
            )
            if not latest:
                raise IncomparableRuns("the census has no complete run to compare")
            zone = latest[0]["zone"]
        complete = _complete_runs(db, zone)
        if len(complete) < 2:
            raise IncomparableRuns(
                f"need two complete runs of .{zone} to compare, found {len(complete)}"
                + _skipped_text(db, zone, 0, None)
            )
        run_a, run_b = complete[-2]["id"], complete[-1]["id"]
    elif run_a is None:
        b = get_run(db, run_b)
        older = [r for r in _complete_runs(db, b["zone"]) if r["id"] < run_b]
        if not older:
            raise IncomparableRuns(
                f"no complete run of .{b['zone']} before run {run_b} to compare with"
                + _skipped_text(db, b["zone"], 0, run_b)
            )
        run_a = older[-1]["id"]
    a, b = get_run(db, run_a), get_run(db, run_b)
    if a["id"] == b["id"]:
        raise IncomparableRuns(f"run {a['id']} compared with itself has no changes to show")
    if a["zone"] != b["zone"]:
        raise IncomparableRuns(
            f"run {a['id']} is a census of .{a['zone']} and run {b['id']} of .{b['zone']}: "
            "runs of different zones cannot be compared"
        )
    notes = [note for note in (_check(a, force), _check(b, force)) if note]
    low, high = sorted((a["id"], b["id"]))
    skipped = _skipped(db, a["zone"], low, high)
    if skipped:
        notes.append(f"not used as baselines: {skipped}")
    return a, b, notes


def _skipped(db: sqlite_utils.Database, zone: str, low: int, high: int | None) -> str:
    rows = db.execute(
        "SELECT id, status FROM runs WHERE zone = ? AND id > ? AND id < ? AND status != ? "
        "ORDER BY id",
        [zone, low, high if high is not None else 2**62, RunStatus.COMPLETE],
    ).fetchall()
    return ", ".join(f"run {rid} ({status})" for rid, status in rows)


def _skipped_text(db: sqlite_utils.Database, zone: str, low: int, high: int | None) -> str:
    skipped = _skipped(db, zone, low, high)
    return f"; not comparable: {skipped}" if skipped else ""


# --- comparing -----------------------------------------------------------------------------


def compare_runs(
    db: sqlite_utils.Database,
    run_a: int | None = None,
    run_b: int | None = None,
    *,
    zone: str | None = None,
    force: bool = False,
    write: bool = True,
) -> Diff:
    """Compare two runs (defaults: see the module doc) and replace their rows in ``changes``."""
    a, b, notes = choose_runs(db, run_a, run_b, zone=zone, force=force)
    log.info("comparing run %d with run %d", a["id"], b["id"])
    changes = _compute(db, a["id"], b["id"], write=write)
    return Diff(zone=a["zone"], run_a=a, run_b=b, changes=changes, notes=notes)


def compare_with_previous(db: sqlite_utils.Database, run_id: int) -> Diff | None:
    """The compare stage of a run: diff ``run_id`` (possibly still running) with its baseline.

    The baseline is the latest complete run of the same zone before it; None when there is
    none (the first census of a zone).
    """
    run = get_run(db, run_id)
    older = [r for r in _complete_runs(db, run["zone"]) if r["id"] < run_id]
    if not older:
        return None
    a = get_run(db, older[-1]["id"])
    notes = []
    skipped = _skipped(db, run["zone"], a["id"], run_id)
    if skipped:
        notes.append(f"not used as baselines: {skipped}")
    changes = _compute(db, a["id"], run_id, write=True)
    return Diff(zone=run["zone"], run_a=a, run_b=run, changes=changes, notes=notes)


_TEMP_TABLES = (
    "diff_out",
    "diff_d_a",
    "diff_d_b",
    "diff_gone",
    "diff_x_a",
    "diff_x_b",
    "diff_rkeys",
    "diff_s_a",
    "diff_s_b",
    "diff_quiet",
    "diff_site_pairs",
    "diff_l_a",
    "diff_l_b",
    "diff_page_pairs",
)


def _compute(db: sqlite_utils.Database, a: int, b: int, *, write: bool) -> list[Change]:
    conn = db.conn
    for table in _TEMP_TABLES:
        conn.execute(f"DROP TABLE IF EXISTS temp.{table}")
    conn.execute(
        "CREATE TEMP TABLE diff_out (kind TEXT, subject TEXT, domain TEXT, before TEXT, "
        "after TEXT, detail TEXT)"
    )
    params = {"a": a, "b": b}
    for step in (_domains, _zones, _axfr, _records, _sites, _labels, _pages):
        for sql in step():
            conn.execute(sql, params)
    _page_diffs(db, a, b)
    rows = conn.execute(
        "SELECT kind, subject, domain, before, after, detail FROM diff_out"
    ).fetchall()
    if write:
        with conn:
            conn.execute("DELETE FROM changes WHERE from_run = ? AND to_run = ?", [a, b])
            conn.execute(
                "INSERT INTO changes (from_run, to_run, kind, subject, domain, before, after, "
                "detail) SELECT ?, ?, kind, subject, domain, before, after, detail "
                "FROM diff_out ORDER BY rowid",
                [a, b],
            )
    for table in _TEMP_TABLES:
        conn.execute(f"DROP TABLE IF EXISTS temp.{table}")
    changes = [Change(Kind(r[0]), *r[1:]) for r in rows]
    changes.sort(key=lambda c: (_ORDER[c.kind], c.subject, c.detail or ""))
    return changes


def _domains() -> list[str]:
    per_run = (
        "CREATE TEMP TABLE diff_d_{r} (domain TEXT PRIMARY KEY, methods TEXT) WITHOUT ROWID",
        "INSERT INTO diff_d_{r} SELECT domain, group_concat(DISTINCT method) FROM sightings "
        "WHERE run_id = :{r} AND domain IS NOT NULL GROUP BY domain",
    )
    return [
        *(sql.format(r=r) for r in "ab" for sql in per_run),
        "INSERT INTO diff_out SELECT 'domain_added', domain, domain, NULL, methods, "
        "'found by ' || replace(methods, ',', ', ') FROM diff_d_b AS n "
        "WHERE NOT EXISTS (SELECT 1 FROM diff_d_a AS o WHERE o.domain = n.domain)",
        "INSERT INTO diff_out SELECT 'domain_removed', domain, domain, methods, NULL, "
        "'was found by ' || replace(methods, ',', ', ') FROM diff_d_a AS o "
        "WHERE NOT EXISTS (SELECT 1 FROM diff_d_b AS n WHERE n.domain = o.domain)",
        "CREATE TEMP TABLE diff_gone (domain TEXT PRIMARY KEY) WITHOUT ROWID",
        "INSERT INTO diff_gone SELECT domain FROM diff_out "
        "WHERE kind IN ('domain_added', 'domain_removed')",
    ]


def _zones() -> list[str]:
    ns_set = (
        "(SELECT group_concat(ns, ', ') FROM (SELECT DISTINCT ns_name || "
        "coalesce(' ' || address, '') AS ns FROM nameservers "
        "WHERE run_id = :{r} AND zone = z.zone ORDER BY ns))"
    )
    pair = (
        "FROM zones AS z JOIN zones AS y ON y.run_id = :b AND y.zone = z.zone WHERE z.run_id = :a"
    )
    return [
        "INSERT INTO diff_out SELECT 'zone_added', zone, zone, NULL, soa_serial, NULL "
        "FROM zones AS y WHERE run_id = :b AND NOT EXISTS "
        "(SELECT 1 FROM zones AS z WHERE z.run_id = :a AND z.zone = y.zone)",
        "INSERT INTO diff_out SELECT 'zone_removed', zone, zone, soa_serial, NULL, NULL "
        "FROM zones AS z WHERE run_id = :a AND NOT EXISTS "
        "(SELECT 1 FROM zones AS y WHERE y.run_id = :b AND y.zone = z.zone)",
        "INSERT INTO diff_out SELECT 'soa_serial', z.zone, z.zone, z.soa_serial, y.soa_serial, "
        f"NULL {pair} AND z.soa_serial IS NOT y.soa_serial",
        "INSERT INTO diff_out SELECT 'nameservers', zone, zone, before, after, NULL FROM "
        f"(SELECT z.zone AS zone, {ns_set.format(r='a')} AS before, "
        f"{ns_set.format(r='b')} AS after {pair}) WHERE before IS NOT after",
    ]


def _axfr() -> list[str]:
    per_run = (
        "CREATE TEMP TABLE diff_x_{r} AS SELECT zone, ns_name, address, "
        "max(outcome = 'success') AS ok, max(CASE WHEN outcome = 'success' THEN records END) "
        "AS records, group_concat(DISTINCT outcome) AS outcomes FROM axfr_attempts "
        "WHERE run_id = :{r} GROUP BY zone, ns_name, address"
    )
    subject = "x.zone || ' @ ' || coalesce(x.ns_name, '?') || coalesce(' ' || x.address, '')"
    done = "'success' || coalesce(' (' || x.records || ' records)', '')"
    return [
        per_run.format(r="a"),
        per_run.format(r="b"),
        f"INSERT INTO diff_out SELECT 'axfr_opened', {subject}, x.zone, "
        f"coalesce(o.outcomes, 'not tried'), {done}, NULL FROM diff_x_b AS x "
        "LEFT JOIN diff_x_a AS o ON o.zone = x.zone AND o.ns_name IS x.ns_name "
        "AND o.address IS x.address WHERE x.ok AND NOT coalesce(o.ok, 0)",
        f"INSERT INTO diff_out SELECT 'axfr_closed', {subject}, x.zone, {done}, "
        "coalesce(n.outcomes, 'not tried'), NULL FROM diff_x_a AS x "
        "LEFT JOIN diff_x_b AS n ON n.zone = x.zone AND n.ns_name IS x.ns_name "
        "AND n.address IS x.address WHERE x.ok AND NOT coalesce(n.ok, 0)",
    ]


def _records() -> list[str]:
    types = ", ".join(f"'{t}'" for t in RECORD_KINDS)
    # What each name answers, as the probe asked it: the contents of a zone transfer are
    # reported through the transfer's own status, not record by record.
    asked = "coalesce(source, '') NOT LIKE 'axfr:%'"
    select = (
        "SELECT name, type, value FROM dns_records WHERE run_id = :{r} "
        f"AND {asked} AND type IN ({types})"
    )
    values = (
        "(SELECT group_concat(value, ' | ') FROM (SELECT DISTINCT value FROM dns_records "
        f"WHERE run_id = :{{r}} AND name = k.name AND type = k.type AND {asked} ORDER BY value))"
    )
    kind = (
        "CASE k.type "
        + " ".join(f"WHEN '{t}' THEN '{k}'" for t, k in RECORD_KINDS.items())
        + " END"
    )
    parent = "substr(k.name, instr(k.name, '.') + 1)"
    domain = (
        "CASE WHEN EXISTS (SELECT 1 FROM diff_d_b WHERE domain = k.name) "
        "OR EXISTS (SELECT 1 FROM diff_d_a WHERE domain = k.name) THEN k.name "
        f"WHEN EXISTS (SELECT 1 FROM diff_d_b WHERE domain = {parent}) "
        f"OR EXISTS (SELECT 1 FROM diff_d_a WHERE domain = {parent}) THEN {parent} "
        "ELSE k.name END"
    )
    return [
        "CREATE TEMP TABLE diff_rkeys (name TEXT, type TEXT, PRIMARY KEY (name, type)) "
        "WITHOUT ROWID",
        "INSERT OR IGNORE INTO diff_rkeys SELECT name, type FROM "
        f"({select.format(r='a')} EXCEPT {select.format(r='b')})",
        "INSERT OR IGNORE INTO diff_rkeys SELECT name, type FROM "
        f"({select.format(r='b')} EXCEPT {select.format(r='a')})",
        f"INSERT INTO diff_out SELECT {kind}, k.name, {domain}, {values.format(r='a')}, "
        f"{values.format(r='b')}, CASE WHEN k.type IN ('A', 'AAAA') THEN k.type END "
        "FROM diff_rkeys AS k WHERE k.name NOT IN (SELECT domain FROM diff_gone) "
        f"AND {parent} NOT IN (SELECT domain FROM diff_gone)",
    ]


def _sites() -> list[str]:
    per_run = (
        "CREATE TEMP TABLE diff_s_{r} (domain TEXT PRIMARY KEY, alive INT, title TEXT) "
        "WITHOUT ROWID",
        "INSERT INTO diff_s_{r} SELECT domain, max(coalesce(alive, 0)), "
        "max(CASE WHEN alive THEN title END) FROM sites WHERE run_id = :{r} GROUP BY domain",
    )
    # A certificate is its identity: a renewal that only moves the validity dates is not a
    # change (and the lab makes a fresh one each time it starts).
    cert = (
        "nullif(ltrim(coalesce('subject ' || {t}.tls_subject, '') || "
        "coalesce('; issuer ' || {t}.tls_issuer, '') || "
        "coalesce('; names ' || {t}.tls_names, ''), '; '), '')"
    )
    pair = "FROM diff_site_pairs"
    return [
        *(sql.format(r=r) for r in "ab" for sql in per_run),
        "INSERT INTO diff_out SELECT 'site_up', n.domain, n.domain, 'down', 'up', "
        "n.title FROM diff_s_b AS n LEFT JOIN diff_s_a AS o ON o.domain = n.domain "
        "WHERE n.alive AND NOT coalesce(o.alive, 0) "
        "AND n.domain NOT IN (SELECT domain FROM diff_gone)",
        "INSERT INTO diff_out SELECT 'site_down', o.domain, o.domain, 'up', 'down', "
        "o.title FROM diff_s_a AS o LEFT JOIN diff_s_b AS n ON n.domain = o.domain "
        "WHERE o.alive AND NOT coalesce(n.alive, 0) "
        "AND o.domain NOT IN (SELECT domain FROM diff_gone)",
        "CREATE TEMP TABLE diff_quiet (domain TEXT PRIMARY KEY) WITHOUT ROWID",
        "INSERT OR IGNORE INTO diff_quiet SELECT domain FROM diff_gone",
        "INSERT OR IGNORE INTO diff_quiet SELECT domain FROM diff_out "
        "WHERE kind IN ('site_up', 'site_down')",
        "CREATE TEMP TABLE diff_site_pairs AS SELECT DISTINCT o.domain AS domain, "
        "o.http_status AS s_a, n.http_status AS s_b, o.title AS t_a, n.title AS t_b, "
        f"{cert.format(t='o')} AS c_a, {cert.format(t='n')} AS c_b "
        "FROM sites AS o JOIN sites AS n ON n.run_id = :b AND n.domain = o.domain "
        "WHERE o.run_id = :a "
        "AND (o.http_status IS NOT n.http_status OR o.title IS NOT n.title "
        f"OR {cert.format(t='o')} IS NOT {cert.format(t='n')}) "
        "AND o.domain NOT IN (SELECT domain FROM diff_quiet)",
        f"INSERT INTO diff_out SELECT 'http_status', domain, domain, s_a, s_b, NULL {pair} "
        "WHERE s_a IS NOT s_b",
        f"INSERT INTO diff_out SELECT 'title', domain, domain, t_a, t_b, NULL {pair} "
        "WHERE t_a IS NOT t_b",
        f"INSERT INTO diff_out SELECT 'certificate', domain, domain, c_a, c_b, NULL {pair} "
        "WHERE c_a IS NOT c_b",
    ]


def _labels() -> list[str]:
    per_run = (
        "CREATE TEMP TABLE diff_l_{r} (domain TEXT PRIMARY KEY, label TEXT, source TEXT) "
        "WITHOUT ROWID",
        "INSERT INTO diff_l_{r} SELECT domain, label, source FROM (SELECT domain, label, "
        "source, row_number() OVER (PARTITION BY domain ORDER BY source = 'label' DESC, "
        "id DESC) AS rank FROM classifications WHERE run_id = :{r}) WHERE rank = 1",
    )
    return [
        *(sql.format(r=r) for r in "ab" for sql in per_run),
        "INSERT INTO diff_out SELECT 'label_changed', o.domain, o.domain, o.label, n.label, "
        "CASE WHEN o.source IS NOT n.source THEN o.source || ' -> ' || n.source "
        "ELSE n.source END FROM diff_l_a AS o JOIN diff_l_b AS n ON n.domain = o.domain "
        "WHERE o.label IS NOT n.label AND o.domain NOT IN (SELECT domain FROM diff_quiet)",
    ]


def _pages() -> list[str]:
    quiet = "domain NOT IN (SELECT domain FROM diff_quiet)"
    return [
        "INSERT INTO diff_out SELECT 'page_added', url, domain, NULL, max(sha256), "
        "max(title) FROM pages AS n WHERE run_id = :b AND NOT EXISTS (SELECT 1 FROM pages "
        f"AS o WHERE o.run_id = :a AND o.url = n.url) AND {quiet} GROUP BY url",
        "INSERT INTO diff_out SELECT 'page_removed', url, domain, max(sha256), NULL, "
        "max(title) FROM pages AS o WHERE run_id = :a AND NOT EXISTS (SELECT 1 FROM pages "
        f"AS n WHERE n.run_id = :b AND n.url = o.url) AND {quiet} GROUP BY url",
        "CREATE TEMP TABLE diff_page_pairs AS SELECT o.url AS url, o.domain AS domain, "
        "max(o.id) AS id_a, max(n.id) AS id_b FROM pages AS o JOIN pages AS n "
        "ON n.run_id = :b AND n.url = o.url WHERE o.run_id = :a "
        f"AND o.sha256 IS NOT n.sha256 AND o.{quiet} GROUP BY o.url",
    ]


_TEXT = (
    "SELECT coalesce(p.text, (SELECT text FROM pages WHERE id = p.revisit_of)), p.sha256 "
    "FROM pages AS p WHERE p.id = ?"
)


def _page_diffs(db: sqlite_utils.Database, a: int, b: int) -> None:
    """Add the ``page_changed`` rows, each with a bounded unified diff of the text."""
    conn = db.conn
    pairs = conn.execute(
        "SELECT url, domain, id_a, id_b FROM diff_page_pairs ORDER BY url"
    ).fetchall()
    for url, domain, id_a, id_b in pairs:
        text_a, sha_a = conn.execute(_TEXT, [id_a]).fetchone()
        text_b, sha_b = conn.execute(_TEXT, [id_b]).fetchone()
        conn.execute(
            "INSERT INTO diff_out VALUES ('page_changed', ?, ?, ?, ?, ?)",
            [url, domain, sha_a, sha_b, text_diff(text_a, text_b, f"run {a}", f"run {b}")],
        )


def text_diff(
    before: str | None,
    after: str | None,
    from_label: str = "before",
    to_label: str = "after",
    max_lines: int = DIFF_MAX_LINES,
    max_bytes: int = DIFF_MAX_BYTES,
) -> str:
    """A unified diff of two extracted texts, cut at ``max_lines`` or ``max_bytes``."""
    if before is None and after is None:
        return "(no extracted text on either side)"
    lines = difflib.unified_diff(
        (before or "").splitlines(),
        (after or "").splitlines(),
        fromfile=from_label,
        tofile=to_label,
        lineterm="",
        n=2,
    )
    out: list[str] = []
    size = 0
    for count, line in enumerate(lines):
        size += len(line.encode()) + 1
        if count >= max_lines or size > max_bytes:
            rest = sum(1 for _ in lines) + 1
            out.append(f"... diff cut at {count} lines ({rest} more not shown)")
            break
        out.append(line)
    if not out:
        return "(the extracted text is the same; the content differs elsewhere)"
    return "\n".join(out)


def load_changes(db: sqlite_utils.Database, run_a: int, run_b: int) -> list[Change]:
    """The changes stored for a pair of runs, in report order."""
    get_run(db, run_a)
    get_run(db, run_b)
    rows = db.execute(
        "SELECT kind, subject, domain, before, after, detail FROM changes "
        "WHERE from_run = ? AND to_run = ?",
        [run_a, run_b],
    ).fetchall()
    changes = [Change(Kind(r[0]), *r[1:]) for r in rows]
    changes.sort(key=lambda c: (_ORDER[c.kind], c.subject, c.detail or ""))
    return changes
