"""``census serve``: Datasette on the census, with the project's metadata.

The descriptions, facets and canned queries are data (``crawler/data/metadata.yml``); this
module fills in the zone and the database name, refuses a schema with an undocumented table
or column, and starts Datasette.  Datasette opens the census with ``?mode=ro`` (it never
writes, and it still sees a run that is writing); ``immutable=True`` opens a finished census
with ``?immutable=1`` instead, which is faster but must not be used while a run writes,
because an immutable reader ignores the WAL.

Screenshots (``census run --screenshots``) are files under ``<out>/screenshots/``: Datasette
serves that folder at ``/screenshots/`` and the ``render_cell`` hook below shows the
``screenshot`` column of ``sites`` and ``latest_census`` as a thumbnail linking to the PNG.

Search: the ``prepare_connection`` hook below makes Datasette's search of ``pages`` (the box,
``?_search=``, facets with it) and the ``search_pages`` query read Korean, Chinese and
Japanese words as ``crawler/search.py`` indexes them.
"""

from __future__ import annotations

import json
import re
import sqlite3
import sys
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from . import __version__, search
from .db import reading
from .errors import CensusError

SCREENSHOT_PATH = re.compile(r"^screenshots/run\d+/[a-z0-9._-]+\.png$")
"""What ``sites.screenshot`` holds (see ``crawler/screenshots.py``); anything else is text."""

FTS_SHADOWS = ("_data", "_idx", "_docsize", "_config", "_content")


class UndocumentedSchema(CensusError):
    """The census schema has tables or columns that metadata.yml does not describe."""


def load_metadata() -> dict[str, Any]:
    """The metadata as shipped, with placeholders not yet filled in."""
    text = resources.files("crawler").joinpath("data/metadata.yml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def schema(db_path: str | Path) -> dict[str, list[str]]:
    """Table and view -> columns of the census, without SQLite's and FTS5's internal tables."""
    with reading(db_path) as conn:
        rows = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type IN ('table', 'view') "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name"
        ).fetchall()
        fts = {name for name, sql in rows if sql and "VIRTUAL TABLE" in sql.upper()}
        shadows = {f"{name}{suffix}" for name in fts for suffix in FTS_SHADOWS}
        return {
            name: [row[1] for row in conn.execute("SELECT * FROM pragma_table_info(?)", [name])]
            for name, _ in rows
            if name not in shadows
        }


def missing_descriptions(db_path: str | Path, metadata: dict[str, Any] | None = None) -> list[str]:
    """``table`` or ``table.column`` for every part of the schema without a description."""
    tables = (metadata or load_metadata()).get("tables", {})
    missing = []
    for table, columns in schema(db_path).items():
        meta = tables.get(table) or {}
        if not str(meta.get("description", "")).strip():
            missing.append(table)
        described = meta.get("columns") or {}
        missing += [f"{table}.{c}" for c in columns if not str(described.get(c, "")).strip()]
    return missing


def _zones(db_path: str | Path) -> list[str]:
    try:
        with reading(db_path) as conn:
            return [z for (z,) in conn.execute("SELECT DISTINCT zone FROM runs ORDER BY zone")]
    except (sqlite3.OperationalError, CensusError):
        return []


def _fill(value: Any, fields: dict[str, str]) -> Any:
    """Placeholders filled in strings only, so SQL with braces is left alone."""
    if isinstance(value, str):
        for key, text in fields.items():
            value = value.replace("{" + key + "}", text)
        return value
    if isinstance(value, dict):
        return {k: _fill(v, fields) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, fields) for v in value]
    return value


def build_metadata(db_path: str | Path, database: str | None = None) -> dict[str, Any]:
    """Datasette metadata for the census at ``db_path`` (served as ``database``)."""
    if not Path(db_path).is_file():
        raise CensusError(f"no census database at {db_path}")
    database = database or Path(db_path).stem
    raw = load_metadata()
    missing = missing_descriptions(db_path, raw)
    if missing:
        raise UndocumentedSchema(
            "metadata.yml has no description for: " + ", ".join(missing[:20])
        )
    zones = _zones(db_path) or ["?"]
    fields = {"zone": ", .".join(zones), "version": __version__, "database": database}
    top = {k: _fill(v, fields) for k, v in raw.items() if k not in ("tables", "queries")}
    tables = {
        name: {k: v for k, v in meta.items() if k != "columns"}
        | {"columns": dict(meta.get("columns") or {})}
        for name, meta in raw["tables"].items()
    }
    queries = _fill(raw.get("queries", {}), {k: v for k, v in fields.items() if k != "version"})
    return top | {"databases": {database: {"tables": tables, "queries": queries}}}


def screenshot_dir(db_path: str | Path, out_dir: str | Path | None = None) -> Path:
    """Where the screenshots are: ``<out>/screenshots``, --out defaulting to where the latest
    run recorded that it wrote its files (wherever the database lives)."""
    from .runs import latest_files_root

    root = Path(out_dir) if out_dir is not None else latest_files_root(db_path)
    return root / "screenshots"


def datasette_app(db_path: str | Path, out_dir: str | Path | None = None) -> Any:
    """A ``datasette.app.Datasette`` on the census, as ``census serve`` starts it."""
    from datasette.app import Datasette

    register_plugin()
    shots = screenshot_dir(db_path, out_dir)
    return Datasette(
        [str(db_path)],
        metadata=build_metadata(db_path),
        static_mounts=[("screenshots", str(shots))] if shots.is_dir() else [],
    )


def serve(
    db_path: str | Path,
    host: str = "127.0.0.1",
    port: int = 8001,
    out_dir: str | Path | None = None,
    immutable: bool = False,
    open_browser: bool = False,
) -> None:
    """Run Datasette's own ``serve`` on the census until Ctrl-C."""
    try:
        from datasette.cli import cli as datasette_cli
    except ImportError:
        raise CensusError(
            "Datasette is not installed: pip install 'cctld-census[serve]'"
        ) from None
    metadata = build_metadata(db_path)
    register_plugin()
    with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8") as meta_file:
        json.dump(metadata, meta_file, ensure_ascii=False)
        meta_file.flush()
        args = ["serve", "-i", str(db_path)] if immutable else ["serve", str(db_path)]
        args += ["--metadata", meta_file.name, "--host", host, "--port", str(port)]
        shots = screenshot_dir(db_path, out_dir)
        if shots.is_dir():
            args += ["--static", f"screenshots:{shots}"]
        if open_browser:
            args.append("--open")
        datasette_cli.main(args, prog_name="datasette", standalone_mode=False)


def register_plugin() -> None:
    """Register this module's hooks with Datasette once per process."""
    from datasette.plugins import pm

    module = sys.modules[__name__]
    if not pm.is_registered(module):
        pm.register(module, name="cctld_census")


try:
    from datasette import hookimpl
except ImportError:  # Datasette is an optional extra: without it only the hooks are missing
    def hookimpl(fn: Any = None, **_: Any) -> Any:
        return fn if fn is not None else (lambda f: f)


@hookimpl(trylast=True)  # after Datasette's own, so that this escape_fts is the one kept
def prepare_connection(conn: sqlite3.Connection, database: str, datasette: Any) -> None:
    """On a census: the search box and ``?_search=`` query ``pages_fts`` through
    :func:`crawler.search.match_query` (Datasette calls ``escape_fts(:search)``), and the
    canned queries get ``census_match`` and ``census_snippet``."""
    if not search.has_index(conn):
        return
    search.register_functions(conn)
    conn.create_function("escape_fts", 1, search.match_query, deterministic=True)


@hookimpl
def render_cell(value: Any, column: str, table: str | None, database: str, datasette: Any) -> Any:
    """A screenshot path becomes a thumbnail linking to the full PNG."""
    if column != "screenshot" or not isinstance(value, str) or not SCREENSHOT_PATH.match(value):
        return None
    from markupsafe import Markup, escape

    url = escape(datasette.urls.path("/" + value))
    return Markup(
        f'<a href="{url}"><img src="{url}" alt="screenshot" width="200" loading="lazy"></a>'
    )
