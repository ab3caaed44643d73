"""Test helpers for the crawl stage: a census run whose DNS facts come straight from a world.

The crawl tests should not depend on the probe: they write the sightings and A records that a
probe of the lab world would write, then crawl the lab's web servers.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from crawler.db import RunStatus, finish_run, open_census, see_name, start_run
from crawler.lab.world import World
from crawler.profiles import load_profile


def census_from_world(db_path: Path, world: World, domains: list[str] | None = None) -> int:
    """A complete probe-like run of ``world`` in a census at ``db_path``; returns its id."""
    db = open_census(db_path)
    suffixes = load_profile("kp").suffix_set
    run_id = start_run(db, world.zone, {"zone": world.zone})
    names = domains or sorted(
        {
            suffixes.domain_of(str(n).rstrip("."))
            for z in world.zones.values()
            for n in (name.derelativize(z.origin).to_text(omit_final_dot=True) for name in z.nodes)
        }
        - {None}
    )
    names = [n for n in names if "*" not in n]
    with db.conn:
        for domain in names:
            see_name(db, run_id, domain, domain, suffixes.suffix_of(domain), "axfr", "test")
            for host in (domain, f"www.{domain}"):
                for address in world.resolve(host, "A"):
                    db["dns_records"].insert(
                        {
                            "run_id": run_id,
                            "name": host,
                            "type": "A",
                            "ttl": 300,
                            "value": address,
                            "source": world.resolver_address,
                        }
                    )
    finish_run(db, run_id, RunStatus.COMPLETE)
    db.close()
    return run_id


def rows(db_path: Path, sql: str, *params: object) -> list[tuple]:
    """The rows of ``sql`` on the census at ``db_path``, on a connection of its own."""
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()
