"""Every census file ever written upgrades to the newest schema with all of its rows.

What each migration does to the schema is frozen in ``tests/migrations/<name>.digest`` when
it ships (the objects it creates or alters, with a digest of their SQL as SQLite stores it,
and those it drops): a migration that is renamed, reordered or edited afterwards no longer
makes its frozen change and fails here.  A new migration gets its file with
``python -m tests.test_migrations --freeze``, which never overwrites one that exists.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from crawler import migrations
from crawler.db import open_census

FROZEN = Path(__file__).parent / "migrations"
NAMES = [m.__name__ for m in migrations.MIGRATIONS]
BY_NAME = {m.__name__: m for m in migrations.MIGRATIONS}


def objects(db: sqlite_utils.Database) -> dict[str, str]:
    """``type name`` -> SQL of every schema object, without the bookkeeping table."""
    rows = db.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
        "AND name NOT LIKE 'census_migrations%' AND sql IS NOT NULL ORDER BY type, name"
    ).fetchall()
    return {f"{kind} {name}": sql.strip() for kind, name, sql in rows}


def schema(db: sqlite_utils.Database) -> str:
    return "".join(f"-- {key}\n{sql};\n" for key, sql in objects(db).items())


def change(before: dict[str, str], after: dict[str, str]) -> str:
    """What one migration did: objects made or altered (with the digest of their SQL), then
    objects dropped; a digest, not the SQL, so the frozen files do not restate the schema."""
    made = [f"{key} {hashlib.sha256(sql.encode()).hexdigest()[:16]}\n"
            for key, sql in after.items() if before.get(key) != sql]
    dropped = [f"dropped {key}\n" for key in before if key not in after]
    return "".join(made + dropped)


def changes() -> dict[str, str]:
    """Each migration's change, applied in declared order to a fresh file."""
    db = sqlite_utils.Database(memory=True)
    out = {}
    for name in NAMES:
        before = objects(db)
        BY_NAME[name](db)
        out[name] = change(before, objects(db))
    return out


def legacy_file(path: Path, names: list[str], user_version: int | None = None) -> Path:
    """A census as a release before named migrations wrote it: these migrations, in this order,
    and only a number to say so."""
    db = sqlite_utils.Database(path)
    for name in names:
        with db.conn:
            BY_NAME[name](db)
    db.execute(f"PRAGMA user_version = {len(names) if user_version is None else user_version}")
    fill(db)
    db.close()
    return path


def earlier_file(path: Path, names: list[str]) -> Path:
    """A census as the release that had ``names`` wrote it: a file from before named
    migrations while they are all legacy ones, else one that lists them by name."""
    if all(name in migrations._LEGACY for name in names):
        return legacy_file(path, names)
    db = sqlite_utils.Database(path)
    db["census_migrations"].create({"name": str, "applied_at": str}, pk="name")
    for name in names:
        with db.conn:
            BY_NAME[name](db)
            db["census_migrations"].insert({"name": name, "applied_at": "earlier release"})
    db.execute(f"PRAGMA user_version = {len(names)}")
    fill(db)
    db.close()
    return path


def _value(column_type: type) -> Any:
    return {int: 1, float: 0.5, str: "x"}.get(column_type, "x")


def fill(db: sqlite_utils.Database) -> None:
    """A row in every table, each column with a value of its type."""
    tables = [t for t in db.table_names() if "_fts" not in t and t != "census_migrations"]
    with db.conn:
        for table in sorted(tables, key=lambda t: t != "runs"):
            row = {name: _value(kind) for name, kind in db[table].columns_dict.items()}
            db[table].insert(row)


def contents(db: sqlite_utils.Database) -> dict[str, list[dict[str, Any]]]:
    tables = [t for t in db.table_names() if "_fts" not in t and t != "census_migrations"]
    return {t: list(db[t].rows) for t in tables}


def test_the_migrations_are_the_ones_that_shipped() -> None:
    frozen = sorted(p.stem for p in FROZEN.glob("*.digest"))
    missing = [n for n in NAMES if n not in frozen]
    assert not missing, f"freeze new migrations: python -m tests.test_migrations --freeze {missing}"
    assert [n for n in NAMES if n in frozen] == frozen, "a shipped migration was renamed or dropped"
    assert sorted(NAMES) == NAMES, "migrations are declared in the order of their numbers"
    for name, made in changes().items():
        assert made == (FROZEN / f"{name}.digest").read_text(), (
            f"{name} no longer makes the change it shipped with: add a new migration instead"
        )


@pytest.mark.parametrize("version", range(len(NAMES)))
def test_a_census_at_every_earlier_version_upgrades_with_its_rows(
    tmp_path: Path, version: int
) -> None:
    old = earlier_file(tmp_path / "old.db", NAMES[:version])
    before = contents(sqlite_utils.Database(old))
    head = open_census(tmp_path / "head.db")

    db = open_census(old)

    assert schema(db) == schema(head)
    assert migrations.applied(db) == NAMES
    after = contents(db)
    for table, rows in before.items():
        assert [{k: r[k] for k in rows[0]} for r in after[table]] == rows, table
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(NAMES)


@pytest.mark.parametrize(
    ("order", "user_version"),
    [
        # version 5, written just before m006 landed: upgraded to 6 without m006's columns
        (["m001_dns_census", "m002_web_census", "m003_history_views",
          "m004_latest_census_views", "m005_latest_census_partial"], 5),
        # version 4 of that release: did not open at all ("view latest_census already exists")
        (["m001_dns_census", "m002_web_census", "m003_history_views",
          "m004_latest_census_views"], 4),
        # a version-5 file after the wrong upgrade: it says 6 and lacks m006
        (["m001_dns_census", "m002_web_census", "m003_history_views",
          "m004_latest_census_views", "m005_latest_census_partial"], 6),
        # written by the release that declared m006 above m004
        (["m001_dns_census", "m002_web_census", "m003_history_views", "m006_page_signals"], 4),
        (["m001_dns_census", "m002_web_census", "m003_history_views", "m006_page_signals",
          "m004_latest_census_views", "m005_latest_census_partial"], 6),
    ],
)
def test_files_of_the_release_that_applied_migrations_out_of_order_are_repaired(
    tmp_path: Path, order: list[str], user_version: int
) -> None:
    old = legacy_file(tmp_path / "old.db", order, user_version)
    before = contents(sqlite_utils.Database(old))

    db = open_census(old)

    assert schema(db) == schema(open_census(tmp_path / "head.db"))
    assert {"description", "headings"} <= set(db["pages"].columns_dict)
    assert "anchor" in db["links"].columns_dict
    assert db["pages"].get(1)["text"] == before["pages"][0]["text"]
    assert db["runs"].count == 1


def test_opening_twice_applies_nothing_the_second_time(tmp_path: Path) -> None:
    open_census(tmp_path / "c.db")
    db = sqlite_utils.Database(tmp_path / "c.db")
    assert migrations.apply(db) == []
    assert migrations.applied(db) == NAMES


def freeze() -> None:
    """Write the change of each migration that has no frozen file yet."""
    for name, made in changes().items():
        path = FROZEN / f"{name}.digest"
        if not path.exists():
            FROZEN.mkdir(exist_ok=True)
            path.write_text(made)
            print(f"froze {path}")


if __name__ == "__main__" and "--freeze" in sys.argv:
    freeze()
