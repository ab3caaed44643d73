"""The census database: migrations upgrade old files, runs and sightings keep their history."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest
import sqlite_utils

from crawler import migrations
from crawler.db import (
    RunStatus,
    finish_run,
    get_run,
    open_census,
    see_bulk,
    see_name,
    see_names,
    start_run,
)
from crawler.errors import RunNotFound
from crawler.names import Suffixes, normalize_name


def test_a_new_census_is_at_the_newest_schema_with_wal_and_foreign_keys(tmp_path: Path) -> None:
    db = open_census(tmp_path / "census.db")
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(migrations.MIGRATIONS)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert {fk.other_table for fk in db["sightings"].foreign_keys} == {"runs"}


def test_an_old_census_file_is_upgraded_in_place_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = sqlite_utils.Database(path)
    with old.conn:
        migrations.MIGRATIONS[0](old)  # a census written by the first release: DNS only
        old.execute("PRAGMA user_version = 1")
    old["runs"].insert({"id": 1, "zone": "kp", "status": "complete", "options": "{}"})
    old["domains"].insert({"name": "kcna.kp", "suffix": "kp", "first_seen_run": 1,
                           "last_seen_run": 1})
    old.close()

    db = open_census(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(migrations.MIGRATIONS)
    assert db["domains"].get("kcna.kp")["first_seen_run"] == 1
    assert {"sites", "pages", "changes"} <= set(db.table_names())
    assert "anchor" in db["links"].columns_dict
    assert get_run(db, 1)["zone"] == "kp"


def test_sightings_carry_first_and_last_seen_across_runs(tmp_path: Path) -> None:
    db = open_census(tmp_path / "census.db")
    first = start_run(db, "kp", {})
    assert see_name(db, first, "kcna.kp", "kcna.kp", "kp", "axfr", "127.45.176.16") is True
    assert see_name(db, first, "www.kcna.kp", "kcna.kp", "kp", "link", "http://kcna.kp/") is False
    finish_run(db, first, RunStatus.COMPLETE)
    second = start_run(db, "kp", {})
    assert see_name(db, second, "kcna.kp", "kcna.kp", "kp", "seed", "kp.toml") is True
    assert db["domains"].get("kcna.kp") == {
        "name": "kcna.kp", "suffix": "kp", "first_seen_run": first, "last_seen_run": second,
    }
    # the same sighting twice is one row
    see_name(db, second, "kcna.kp", "kcna.kp", "kp", "seed", "kp.toml")
    assert db["sightings"].count_where("run_id = ?", [second]) == 1


def test_get_run_of_an_empty_census_says_so(tmp_path: Path) -> None:
    db = open_census(tmp_path / "census.db")
    with pytest.raises(RunNotFound, match="the census has no runs"):
        get_run(db)
    with pytest.raises(RunNotFound, match="no run 7"):
        get_run(db, 7)


def test_options_are_stored_as_json(tmp_path: Path) -> None:
    db = open_census(tmp_path / "census.db")
    run_id = start_run(db, "kp", {"allow_nets": ("127.0.0.0/8",), "seeds": False})
    assert get_run(db, run_id)["options"] == {"allow_nets": ["127.0.0.0/8"], "seeds": False}
    raw = sqlite3.connect(tmp_path / "census.db").execute("SELECT status FROM runs").fetchone()
    assert raw == ("running",)


def test_a_batch_of_sightings_is_what_one_by_one_gives(tmp_path: Path) -> None:
    from crawler.db import see_names

    rows = [
        ("kcna.kp", "kcna.kp", "kp", "axfr", "127.45.176.16"),
        ("www.kcna.kp", "kcna.kp", "kp", "axfr", "127.45.176.16"),
        ("airkoryo.com.kp", "airkoryo.com.kp", "com.kp", "axfr", "127.45.176.16"),
        ("com.kp", None, None, "axfr", "127.45.176.16"),
    ]
    one, many = open_census(tmp_path / "one.db"), open_census(tmp_path / "many.db")
    for db in (one, many):
        earlier = start_run(db, "kp", {})
        see_name(db, earlier, "kcna.kp", "kcna.kp", "kp", "seed", "kp.toml")
        finish_run(db, earlier, RunStatus.COMPLETE)
        start_run(db, "kp", {})
    new_one = sum(see_name(one, 2, *row) for row in rows)
    new_many = see_names(many, 2, rows)
    assert new_one == new_many == 2
    for table in ("sightings", "domains"):
        assert list(one[table].rows) == list(many[table].rows)


TRICKY = [
    "kp", "com.kp", "a.com.kp", "www.a.com.kp", "b.kp", "x.y.b.kp", "-bad.kp", "bad-.kp",
    "a..kp", "UP.kp", "a_b.kp", "*.kp", "x\\032y.kp", "rep.kp", "q.w.rep.kp", "com.com.kp",
    "org.kp.kp", "notkp", "xkp", "a.b.c.d.e.org.kp", "ab-c.kp", "a" * 64 + ".kp", ".kp",
    "kp.kp", "a" * 63 + ".kp", "ns1.kcna.kp",
]


def test_bulk_sightings_match_one_at_a_time(tmp_path) -> None:
    rng = random.Random(14)
    names = TRICKY + [
        ".".join(rng.choice(["a", "b", "com", "org", "rep", "x-y", "9", "-", "A", "_"])
                 for _ in range(rng.randint(1, 4))) + rng.choice([".kp", ".com.kp", "", ".kp."])
        for _ in range(2000)
    ]
    suffixes = Suffixes("kp", ["com", "org", "rep"])
    rows = []
    for name in names:
        clean = normalize_name(name)
        if clean is None or clean != name or not suffixes.in_zone(clean):
            continue
        domain, suffix = suffixes.split(clean) or (None, None)
        rows.append((clean, domain, suffix, "axfr", "127.0.0.2"))
    one, bulk = open_census(tmp_path / "one.db"), open_census(tmp_path / "bulk.db")
    new_one = see_names(one, start_run(one, "kp", {}), rows)
    new_bulk = see_bulk(bulk, start_run(bulk, "kp", {}), "kp", suffixes.suffixes, names, "axfr",
                        "127.0.0.2")
    assert new_one == new_bulk > 10
    for sql in ("SELECT run_id, name, domain, method, source FROM sightings ORDER BY name",
                "SELECT * FROM domains ORDER BY name"):
        assert one.execute(sql).fetchall() == bulk.execute(sql).fetchall()
    assert ("a.com.kp", "a.com.kp") in bulk.execute("SELECT name, domain FROM sightings").fetchall()


def test_shallow_names_split_in_python_as_in_sql(tmp_path) -> None:
    """A forked AXFR parser works out the domains of names one label under the zone itself."""
    from crawler.db import see_split, shallow_split

    rng = random.Random(15)
    names = TRICKY + [
        rng.choice(["a", "b", "com", "org", "rep", "x-y", "9", "-", "A", "_", "a-", "é", "a b"])
        + rng.choice(["", "-z", "_9", "q" * 62]) + rng.choice([".kp", ".kp.", "", ".com.kp"])
        for _ in range(2000)
    ]
    suffixes = Suffixes("kp", ["com", "org", "rep"]).suffixes
    shallow = [n for n in names if n.count(".") <= 1]
    sql, python = open_census(tmp_path / "sql.db"), open_census(tmp_path / "python.db")
    see_bulk(sql, start_run(sql, "kp", {}), "kp", suffixes, shallow, "axfr", "127.0.0.2")
    see_split(python, start_run(python, "kp", {}), shallow_split("kp", suffixes, shallow),
              "axfr", "127.0.0.2")
    for query in ("SELECT run_id, name, domain, method, source FROM sightings ORDER BY name",
                  "SELECT * FROM domains ORDER BY name"):
        assert sql.execute(query).fetchall() == python.execute(query).fetchall()
    assert python["domains"].count > 20 and python["sightings"].count_where("domain IS NULL") >= 4
