"""``census report``: one self-contained HTML file about a run, for people who never query.

Everything is inside the file: CSS inline, charts as SVG drawn here, screenshots as ``data:``
URIs, so it can be mailed or archived as is.  The layout is a Jinja2 template
(``crawler/data/report.html.j2``); this module only gathers numbers and draws the charts.
"""

from __future__ import annotations

import base64
import json
import re
import sqlite3
from dataclasses import dataclass
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any

from . import __version__
from .db import reading
from .errors import CensusError, RunNotFound
from .migrations import GUESS
from .runs import files_root

PALETTE = ("#1f6f8b", "#e07a3f", "#5b8c5a", "#b5485d", "#7a5ea8", "#c9a227", "#3f8fd2",
           "#8a6d3b", "#4c9f9f", "#a05195", "#6b7b8c", "#d45087")
SCREENSHOT = re.compile(r"^screenshots/run\d+/[a-z0-9._-]+\.png$")
MAX_SCREENSHOT_BYTES = 2_000_000
"""A larger PNG is linked, not embedded, so a report of a big zone stays mailable."""


@dataclass(frozen=True)
class Bar:
    label: str
    value: int


def bar_chart(bars: list[Bar], title: str, width: int = 460) -> str:
    """A horizontal bar chart as inline SVG: one labelled bar per item, value at its end."""
    row, left, right = 26, 150, 48
    height = max(1, len(bars)) * row + 8
    top = max((b.value for b in bars), default=0) or 1
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for i, bar in enumerate(bars):
        y = 4 + i * row
        length = (width - left - right) * bar.value / top
        color = PALETTE[i % len(PALETTE)]
        parts += [
            f'<text x="{left - 8}" y="{y + 17}" text-anchor="end" class="label">'
            f"{escape(bar.label)}</text>",
            f'<rect class="bar" x="{left}" y="{y + 3}" width="{length:.1f}" height="{row - 8}" '
            f'rx="3" fill="{color}"><title>{escape(bar.label)}: {bar.value}</title></rect>',
            f'<text x="{left + length + 6:.1f}" y="{y + 17}" class="value">{bar.value}</text>',
        ]
    if not bars:
        parts.append(f'<text x="{left}" y="20" class="label">none</text>')
    parts.append("</svg>")
    return "".join(parts)


def runs_chart(series: list[dict[str, Any]], width: int = 940, height: int = 220) -> str:
    """Domains seen and live sites per run, as paired columns (SVG), oldest run on the left."""
    left, bottom, top_pad = 40, 34, 14
    plot_h = height - bottom - top_pad
    top = max((max(s["domains"], s["live"]) for s in series), default=0) or 1
    slot = (width - left - 10) / max(1, len(series))
    bar_w = min(28.0, slot / 3)
    parts = [
        f'<svg class="chart" role="img" aria-label="Domains and live sites per run" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'xmlns="http://www.w3.org/2000/svg"><title>Domains and live sites per run</title>',
    ]
    for frac in (0, 0.5, 1):
        y = top_pad + plot_h * (1 - frac)
        parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" '
                     'class="grid"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="value">'
                     f"{round(top * frac)}</text>")
    for i, s in enumerate(series):
        x = left + i * slot + slot / 2 - bar_w
        for j, (key, color) in enumerate((("domains", PALETTE[0]), ("live", PALETTE[1]))):
            h = plot_h * s[key] / top
            parts.append(
                f'<rect class="bar" x="{x + j * bar_w:.1f}" y="{top_pad + plot_h - h:.1f}" '
                f'width="{bar_w - 2:.1f}" height="{h:.1f}" rx="2" fill="{color}">'
                f"<title>run {s['id']}: {s[key]} {key}</title></rect>"
            )
        parts.append(f'<text x="{x + bar_w:.1f}" y="{height - 16}" text-anchor="middle" '
                     f'class="label">run {s["id"]}</text>')
        parts.append(f'<text x="{x + bar_w:.1f}" y="{height - 3}" text-anchor="middle" '
                     f'class="small">{escape(str(s["date"]))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _rows(conn: sqlite3.Connection, sql: str, *params: Any) -> list[dict[str, Any]]:
    cursor = conn.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


_SITES = f"""
SELECT s.domain, s.domain AS name, d.suffix,
    (SELECT label FROM classifications WHERE run_id = s.run_id AND domain = s.domain
        ORDER BY source = 'label' DESC, id DESC LIMIT 1) AS purpose,
    (SELECT confidence FROM classifications WHERE run_id = s.run_id AND domain = s.domain
        ORDER BY source = 'label' DESC, id DESC LIMIT 1) AS confidence,
    (SELECT {GUESS} FROM classifications WHERE run_id = s.run_id AND domain = s.domain
        ORDER BY source = 'label' DESC, id DESC LIMIT 1) AS guessed,
    max(s.alive) AS alive, s.http_status, s.title, s.lang, coalesce(s.final_url, s.url) AS url,
    s.error, s.screenshot, s.pages
FROM sites AS s LEFT JOIN domains AS d ON d.name = s.domain
WHERE s.run_id = ?
GROUP BY s.domain
ORDER BY max(s.alive) DESC, s.domain
"""


def _screenshot(shots_root: Path, path: str | None) -> str | None:
    """The screenshot as a data: URI, if it is where ``sites.screenshot`` says."""
    if not path or not SCREENSHOT.match(path):
        return None
    file = shots_root / path
    if not file.is_file() or file.stat().st_size > MAX_SCREENSHOT_BYTES:
        return None
    return "data:image/png;base64," + base64.b64encode(file.read_bytes()).decode("ascii")


def gather(db_path: str | Path, run_id: int | None = None,
           shots_root: str | Path | None = None) -> dict[str, Any]:
    """Everything the report shows about ``run_id`` (default: the latest run)."""
    with reading(db_path) as conn:
        return _gather(conn, run_id, Path(shots_root) if shots_root else None, Path(db_path))


DEAD_REASONS = (
    ("refused", "connection refused"),
    ("timed out", "timed out"),
    ("timeout", "timed out"),
    ("dnslookup", "no address"),
    ("no address", "no address in DNS"),
    ("not crawled", "not globally routable"),
    ("connectionlost", "connection lost"),
    ("responsenevercompleted", "connection lost"),
    ("ssl", "TLS error"),
    ("tls", "TLS error"),
)


def dead_reason(error: str | None, status: int | None) -> str:
    """A short reason for one failed start URL ("connection refused", "HTTP 502")."""
    if status:
        return f"HTTP {status}"
    low = (error or "").lower()
    for needle, reason in DEAD_REASONS:
        if needle in low:
            return reason
    return (error or "no answer").split(":")[0][:40]


def dead_summary(attempts: list[dict[str, Any]]) -> str:
    """"connection refused on 2 URLs, HTTP 502 on 1 URL": one line per dead site."""
    counts: dict[str, int] = {}
    for a in attempts:
        reason = dead_reason(a["error"], a["http_status"])
        counts[reason] = counts.get(reason, 0) + 1
    return ", ".join(f"{r} on {n} URL{'s' if n > 1 else ''}" for r, n in counts.items())


def _gather(conn: sqlite3.Connection, run_id: int | None, shots_root: Path | None,
            db_path: Path) -> dict[str, Any]:
    sql = "SELECT * FROM runs WHERE id = ?" if run_id else "SELECT * FROM runs ORDER BY id DESC"
    runs = _rows(conn, sql + " LIMIT 1", *([run_id] if run_id else []))
    if not runs:
        raise RunNotFound(f"no run {run_id}" if run_id else "the census has no runs")
    run = runs[0]
    rid = run["id"]
    options = json.loads(run["options"] or "{}")
    root = shots_root or files_root(db_path, options)
    sites = _rows(conn, _SITES, rid)
    attempts: dict[str, list[dict[str, Any]]] = {}
    for a in _rows(conn, "SELECT domain, url, http_status, error FROM site_attempts "
                   "WHERE run_id = ? ORDER BY id", rid):
        attempts.setdefault(a["domain"], []).append(a)
    for site in sites:
        site["screenshot_uri"] = _screenshot(root, site["screenshot"])
        failed = [a for a in attempts.get(site["domain"], [])
                  if not (a["http_status"] and 200 <= a["http_status"] < 300)]
        site["attempts"] = failed or [{"url": site["url"], "http_status": site["http_status"],
                                       "error": site["error"]}]
        site["summary"] = dead_summary(site["attempts"])
    one = lambda sql, *p: conn.execute(sql, p).fetchone()[0]  # noqa: E731
    counts = _rows(conn, "SELECT * FROM run_counts WHERE run_id = ?", rid)[0]
    purposes: dict[str, int] = {}
    for site in sites:
        if site["alive"]:
            # a purpose guessed from the name alone is no content tag: shown as a guess
            purpose = "guessed from name" if site["guessed"] else site["purpose"] or "unknown"
            purposes[purpose] = purposes.get(purpose, 0) + 1
    languages = _rows(conn, "SELECT coalesce(lang, '?') AS lang, count(DISTINCT domain) AS n "
                      "FROM pages WHERE run_id = ? GROUP BY 1 ORDER BY n DESC, lang", rid)
    series = _rows(
        conn,
        "SELECT r.id, substr(r.started_at, 1, 10) AS date, "
        "(SELECT count(DISTINCT domain) FROM sightings WHERE run_id = r.id "
        "AND domain IS NOT NULL) AS domains, "
        "(SELECT count(DISTINCT domain) FROM sites WHERE run_id = r.id AND alive) AS live "
        "FROM runs AS r WHERE r.zone = ? AND r.id <= ? ORDER BY r.id",
        run["zone"], rid,
    )
    axfr = _rows(conn, "SELECT zone, ns_name, address, outcome, records FROM axfr_attempts "
                 "WHERE run_id = ? ORDER BY outcome != 'success', zone, ns_name, address", rid)
    previous = one("SELECT max(from_run) FROM changes WHERE to_run = ?", rid)
    changes = _rows(conn, "SELECT kind, subject, before, after, detail FROM changes "
                    "WHERE to_run = ? AND from_run = ? ORDER BY id", rid, previous)
    earlier = one("SELECT count(*) FROM runs WHERE zone = ? AND id < ?", run["zone"], rid)
    return {
        "run": run | {"options": options},
        "version": __version__,
        "numbers": {
            "domains": counts["domains"],
            "live": counts["live_sites"],
            "pages": counts["pages"],
            "tagged": counts["tagged"],
            "guessed": counts["guessed"],
            "zones": one("SELECT count(*) FROM zones WHERE run_id = ?", rid),
            "axfr_open": sum(1 for a in axfr if a["outcome"] == "success"),
            "axfr_tried": len(axfr),
            "changes": counts["changes"],
        },
        "first_census": previous is None and earlier == 0,
        "sites": [site for site in sites if site["alive"]],
        "dead_sites": [site for site in sites if not site["alive"]],
        "axfr": axfr,
        "previous": previous,
        "changes": _group_changes(changes),
        "charts": {
            "purposes": bar_chart(
                [Bar(k, v) for k, v in sorted(purposes.items(), key=lambda kv: (-kv[1], kv[0]))],
                "Purposes of live sites",
            ),
            "languages": bar_chart([Bar(r["lang"], r["n"]) for r in languages],
                                   "Sites publishing in each language"),
            "runs": runs_chart(series),
        },
    }


def _group_changes(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from .diff import TITLES, Kind

    order = {kind.value: i for i, kind in enumerate(Kind)}
    groups: dict[str, list[dict[str, Any]]] = {}
    for change in changes:
        groups.setdefault(change["kind"], []).append(change)
    return [
        {"kind": kind, "title": TITLES.get(Kind(kind), kind) if kind in order else kind,
         "changes": items}
        for kind, items in sorted(groups.items(), key=lambda kv: order.get(kv[0], 99))
    ]


def render(data: dict[str, Any]) -> str:
    """The report's HTML from ``gather()``'s data."""
    try:
        import jinja2
    except ImportError:
        raise CensusError("census report needs Jinja2: pip install jinja2") from None
    template = resources.files("crawler").joinpath("data/report.html.j2").read_text("utf-8")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["svg"] = lambda text: jinja2.utils.markupsafe.Markup(text)
    return env.from_string(template).render(**data)


def write_report(db_path: str | Path, run_id: int | None = None,
                 out_path: str | Path | None = None,
                 shots_root: str | Path | None = None) -> Path:
    """Write the report of ``run_id`` to ``out_path`` (default: ``report-run<ID>.html`` beside
    the census database, so ``output/report-run<ID>.html`` for the default census)."""
    data = gather(db_path, run_id, shots_root)
    path = Path(out_path or Path(db_path).parent / f"report-run{data['run']['id']}.html")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(data), encoding="utf-8")
    return path
