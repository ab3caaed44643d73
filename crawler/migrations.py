"""The census schema, as named migrations applied on open.

Old census files are upgraded in place, never rebuilt.  Each migration runs once, in the order
it is declared here, and its name is recorded in ``census_migrations`` as it is applied, so a
file knows exactly what it has (as sqlite-utils' ``Migrations`` does).  Add new migrations at
the end; never rename, reorder or edit one that has shipped: ``tests/test_migrations.py``
compares every migration with the schema it produced when it was released.

Files written before migrations had names carry only ``PRAGMA user_version``, and one release
applied them out of order (m006 was declared above m004 and m005), so that number does not say
what a file holds.  Such a file is read for what it has (``_LEGACY``), and whatever is missing
is applied.
"""

from collections.abc import Callable

import sqlite_utils

Migration = Callable[[sqlite_utils.Database], None]

MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append(fn)
    return fn


@migration
def m001_dns_census(db: sqlite_utils.Database) -> None:
    """Runs and everything the DNS probe finds."""
    db["runs"].create(
        {
            "id": int,
            "zone": str,
            "started_at": str,
            "finished_at": str,
            "status": str,
            "stage": str,
            "message": str,
            "tool_version": str,
            "options": str,
        },
        pk="id",
    )
    db["zones"].create(
        {
            "run_id": int,
            "zone": str,
            "parent": str,
            "soa_serial": int,
            "soa_mname": str,
            "soa_rname": str,
            "signed": int,
            "nsec": str,
            "nsec3_params": str,
            "wildcard": int,
            "wildcard_answers": str,
        },
        pk=("run_id", "zone"),
        foreign_keys=[("run_id", "runs", "id")],
    )
    db["nameservers"].create(
        {
            "id": int,
            "run_id": int,
            "zone": str,
            "ns_name": str,
            "address": str,
            "source": str,
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id")],
    )
    db["axfr_attempts"].create(
        {
            "id": int,
            "run_id": int,
            "zone": str,
            "ns_name": str,
            "address": str,
            "outcome": str,
            "records": int,
            "soa_serial": int,
            "error": str,
            "seconds": float,
            "attempted_at": str,
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id")],
    )
    db["domains"].create(
        {
            "name": str,
            "suffix": str,
            "first_seen_run": int,
            "last_seen_run": int,
        },
        pk="name",
        foreign_keys=[("first_seen_run", "runs", "id"), ("last_seen_run", "runs", "id")],
    )
    db["sightings"].create(
        {
            "id": int,
            "run_id": int,
            "name": str,
            "domain": str,
            "method": str,
            "source": str,
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id")],
    )
    db["dns_records"].create(
        {
            "id": int,
            "run_id": int,
            "name": str,
            "type": str,
            "ttl": int,
            "value": str,
            "source": str,
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id")],
    )
    db["nsec3_hashes"].create(
        {"run_id": int, "zone": str, "hash": str, "next_hash": str, "types": str},
        pk=("run_id", "zone", "hash"),
        foreign_keys=[("run_id", "runs", "id")],
    )
    db["nameservers"].create_index(["run_id", "zone"])
    db["axfr_attempts"].create_index(["run_id", "zone"])
    db["sightings"].create_index(["run_id", "name", "method", "source"], unique=True)
    db["sightings"].create_index(["name"])
    db["dns_records"].create_index(["run_id", "name", "type"])
    db["domains"].create_index(["suffix"])
    db["domains"].create_index(["last_seen_run"])


@migration
def m002_web_census(db: sqlite_utils.Database) -> None:
    """Sites, pages and links from the crawl; purposes from the classifier; change log."""
    db["sites"].create(
        {
            "id": int,
            "run_id": int,
            "domain": str,
            "url": str,
            "final_url": str,
            "http_status": int,
            "address": str,
            "alive": int,
            "title": str,
            "lang": str,
            "pages": int,
            "error": str,
            "server": str,
            "tls_issuer": str,
            "tls_subject": str,
            "tls_names": str,
            "tls_not_before": str,
            "tls_not_after": str,
            "screenshot": str,
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id"), ("domain", "domains", "name")],
    )
    db["pages"].create(
        {
            "id": int,
            "run_id": int,
            "domain": str,
            "url": str,
            "http_status": int,
            "content_type": str,
            "charset": str,
            "sha256": str,
            "title": str,
            "lang": str,
            "lang_confidence": float,
            "lang_source": str,
            "text": str,
            "depth": int,
            "fetched_at": str,
            "warc_file": str,
            "warc_offset": int,
            "warc_record_id": str,
            "revisit_of": int,
        },
        pk="id",
        foreign_keys=[
            ("run_id", "runs", "id"),
            ("domain", "domains", "name"),
            ("revisit_of", "pages", "id"),
        ],
    )
    db["links"].create(
        {
            "id": int,
            "run_id": int,
            "page_id": int,
            "to_url": str,
            "to_host": str,
            "internal": int,
            "how": str,
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id"), ("page_id", "pages", "id")],
    )
    db["classifications"].create(
        {
            "id": int,
            "run_id": int,
            "domain": str,
            "label": str,
            "confidence": float,
            "evidence": str,
            "source": str,
            "secondary": str,
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id"), ("domain", "domains", "name")],
    )
    db["labels"].create(
        {"domain": str, "label": str, "note": str, "set_at": str},
        pk="domain",
    )
    db["changes"].create(
        {
            "id": int,
            "from_run": int,
            "to_run": int,
            "kind": str,
            "subject": str,
            "before": str,
            "after": str,
            "detail": str,
        },
        pk="id",
        foreign_keys=[("from_run", "runs", "id"), ("to_run", "runs", "id")],
    )
    db["sites"].create_index(["run_id", "domain"])
    db["pages"].create_index(["run_id", "domain"])
    db["pages"].create_index(["sha256"])
    db["pages"].create_index(["url"])
    db["links"].create_index(["run_id", "page_id"])
    db["classifications"].create_index(["run_id", "domain"])
    db["changes"].create_index(["from_run", "to_run"])
    db["pages"].enable_fts(["title", "text"], create_triggers=True)


_DOMAIN_HISTORY = """
SELECT
    s.run_id AS run_id,
    r.started_at AS started_at,
    r.status AS run_status,
    s.domain AS domain,
    (SELECT max(alive) FROM sites WHERE run_id = s.run_id AND domain = s.domain) AS alive,
    (SELECT http_status FROM sites WHERE run_id = s.run_id AND domain = s.domain
        ORDER BY alive DESC, id LIMIT 1) AS http_status,
    (SELECT title FROM sites WHERE run_id = s.run_id AND domain = s.domain
        ORDER BY alive DESC, id LIMIT 1) AS title,
    (SELECT label FROM classifications WHERE run_id = s.run_id AND domain = s.domain
        ORDER BY source = 'label' DESC, id DESC LIMIT 1) AS label,
    (SELECT group_concat(value, ' ') FROM (SELECT value FROM dns_records
        WHERE run_id = s.run_id AND name = s.domain AND type IN ('A', 'AAAA')
        ORDER BY value)) AS address,
    (SELECT soa_serial FROM zones WHERE run_id = s.run_id AND zone IN (d.suffix, r.zone)
        ORDER BY length(zone) DESC LIMIT 1) AS soa_serial,
    (SELECT count(*) FROM pages WHERE run_id = s.run_id AND domain = s.domain) AS pages
FROM (SELECT DISTINCT run_id, domain FROM sightings WHERE domain IS NOT NULL) AS s
JOIN runs AS r ON r.id = s.run_id
LEFT JOIN domains AS d ON d.name = s.domain
"""

_CHANGE_HISTORY = """
SELECT
    c.id AS id,
    a.zone AS zone,
    c.from_run AS from_run,
    a.started_at AS from_started_at,
    c.to_run AS to_run,
    b.started_at AS to_started_at,
    c.kind AS kind,
    c.domain AS domain,
    c.subject AS subject,
    c.before AS before,
    c.after AS after,
    c.detail AS detail
FROM changes AS c
JOIN runs AS a ON a.id = c.from_run
JOIN runs AS b ON b.id = c.to_run
"""


@migration
def m003_history_views(db: sqlite_utils.Database) -> None:
    """History views for Datasette (item-version style) and the indexes ``census diff`` needs.

    ``domain_history`` has one row per domain per run; ``change_history`` one row per change
    with the dates of both runs.  ``changes.domain`` names the registrable domain (or zone) a
    change is about, so a domain's whole story is one facet away.
    """
    db["changes"].add_column("domain", str)
    db["changes"].create_index(["domain"])
    db["changes"].create_index(["to_run", "kind"])
    db["sightings"].create_index(["run_id", "domain", "method"])
    db["pages"].create_index(["run_id", "url"])
    db["sites"].create_index(["run_id", "url"])
    db.create_view("domain_history", _DOMAIN_HISTORY)
    db.create_view("change_history", _CHANGE_HISTORY)


_LATEST_RUN = "(SELECT max(id) FROM runs WHERE status = 'complete' AND zone = r.zone)"

_LATEST_CENSUS = f"""
SELECT
    r.id AS run_id,
    r.zone AS zone,
    d.name AS domain,
    d.suffix AS suffix,
    (SELECT label FROM classifications WHERE run_id = r.id AND domain = d.name
        ORDER BY source = 'label' DESC, id DESC LIMIT 1) AS purpose,
    (SELECT confidence FROM classifications WHERE run_id = r.id AND domain = d.name
        ORDER BY source = 'label' DESC, id DESC LIMIT 1) AS confidence,
    coalesce((SELECT max(alive) FROM sites WHERE run_id = r.id AND domain = d.name), 0)
        AS alive,
    (SELECT http_status FROM sites WHERE run_id = r.id AND domain = d.name
        ORDER BY alive DESC, id LIMIT 1) AS http_status,
    (SELECT title FROM sites WHERE run_id = r.id AND domain = d.name
        ORDER BY alive DESC, id LIMIT 1) AS title,
    (SELECT lang FROM sites WHERE run_id = r.id AND domain = d.name
        ORDER BY alive DESC, id LIMIT 1) AS lang,
    (SELECT coalesce(final_url, url) FROM sites WHERE run_id = r.id AND domain = d.name
        ORDER BY alive DESC, id LIMIT 1) AS url,
    (SELECT group_concat(value, ' ') FROM (SELECT DISTINCT value FROM dns_records
        WHERE run_id = r.id AND name = d.name AND type IN ('A', 'AAAA')
        ORDER BY value)) AS address,
    (SELECT count(*) FROM pages WHERE run_id = r.id AND domain = d.name) AS pages,
    (SELECT screenshot FROM sites WHERE run_id = r.id AND domain = d.name
        AND screenshot IS NOT NULL ORDER BY alive DESC, id LIMIT 1) AS screenshot,
    d.first_seen_run AS first_seen_run,
    (SELECT started_at FROM runs WHERE id = d.first_seen_run) AS first_seen,
    d.last_seen_run AS last_seen_run,
    (SELECT started_at FROM runs WHERE id = d.last_seen_run) AS last_seen,
    (SELECT group_concat(method, ' ') FROM (SELECT DISTINCT method FROM sightings
        WHERE run_id = r.id AND domain = d.name ORDER BY method)) AS found_by
FROM runs AS r
JOIN (SELECT DISTINCT run_id, domain FROM sightings WHERE domain IS NOT NULL) AS s
    ON s.run_id = r.id
JOIN domains AS d ON d.name = s.domain
WHERE r.id = {_LATEST_RUN}
"""

_AXFR_HISTORY = """
SELECT
    a.run_id AS run_id,
    r.started_at AS started_at,
    a.zone AS zone,
    a.ns_name AS ns_name,
    a.address AS address,
    a.outcome AS outcome,
    lag(a.outcome) OVER (PARTITION BY a.zone, a.ns_name, a.address ORDER BY a.run_id, a.id)
        AS previous_outcome,
    a.records AS records,
    a.soa_serial AS soa_serial,
    a.error AS error
FROM axfr_attempts AS a
JOIN runs AS r ON r.id = a.run_id
"""


@migration
def m004_latest_census_views(db: sqlite_utils.Database) -> None:
    """``latest_census`` (one row per domain of the latest complete run of each zone) and
    ``axfr_history`` (every transfer attempt with the outcome of the one before it), for
    Datasette and ``census report``."""
    db.create_view("latest_census", _LATEST_CENSUS)
    db.create_view("axfr_history", _AXFR_HISTORY)
    db["sites"].create_index(["run_id", "alive"])
    db["axfr_attempts"].create_index(["outcome"])


@migration
def m005_latest_census_partial(db: sqlite_utils.Database) -> None:
    """``latest_census`` counts partial runs as finished, as ``census diff`` does: a lab or
    real run with one silent nameserver is ``partial`` and is still the census as it stands."""
    db.execute("DROP VIEW latest_census")
    db.create_view(
        "latest_census",
        _LATEST_CENSUS.replace("status = 'complete'", "status IN ('complete', 'partial')"),
    )


@migration
def m006_page_signals(db: sqlite_utils.Database) -> None:
    """What the classifier reads besides the text: meta description, headings, anchor text."""
    db["pages"].add_column("description", str)
    db["pages"].add_column("headings", str)
    db["links"].add_column("anchor", str)


_RUN_COUNTS = """
SELECT
    r.id AS run_id,
    r.zone AS zone,
    (SELECT count(DISTINCT domain) FROM sightings
        WHERE run_id = r.id AND domain IS NOT NULL) AS domains,
    (SELECT count(*) FROM domains WHERE first_seen_run = r.id) AS new_domains,
    (SELECT count(DISTINCT domain) FROM leads
        WHERE run_id = r.id AND domain IS NOT NULL AND NOT confirmed) AS unconfirmed_leads,
    (SELECT count(DISTINCT domain) FROM sites WHERE run_id = r.id) AS sites,
    (SELECT count(DISTINCT domain) FROM sites WHERE run_id = r.id AND alive) AS live_sites,
    (SELECT count(*) FROM pages WHERE run_id = r.id) AS pages,
    (SELECT count(DISTINCT domain) FROM classifications WHERE run_id = r.id) AS classified,
    (SELECT count(DISTINCT domain) FROM classifications
        WHERE run_id = r.id AND label != 'unknown') AS tagged,
    (SELECT count(*) FROM changes WHERE to_run = r.id AND from_run =
        (SELECT max(from_run) FROM changes WHERE to_run = r.id)) AS changes
FROM runs AS r
"""


@migration
def m010_truthful_runs(db: sqlite_utils.Database) -> None:
    """What a cron job needs to trust a run and to resume it.

    ``leads``: names found outside the DNS (links) and whether the DNS confirmed them in the
    run; only a confirmed lead becomes a sighting.  ``page_failures``: pages of a site that
    gave no answer (timeout, reset), so a page that existed is not reported removed.
    ``site_attempts``: each start URL as it was fetched, written as it happens, so a resumed
    crawl knows what it already did.  ``run_stages``: each finished stage's outcome, so a
    resumed run ends with the status it would have had.  ``run_counts``: every count a run
    prints, the report shows and ``census runs`` lists, from one query.
    """
    db["leads"].create(
        {"run_id": int, "name": str, "domain": str, "method": str, "source": str,
         "rcode": str, "confirmed": int},
        pk=("run_id", "name", "method"),
        foreign_keys=[("run_id", "runs", "id")],
    )
    db["page_failures"].create(
        {"id": int, "run_id": int, "domain": str, "url": str, "error": str, "failed_at": str},
        pk="id",
        foreign_keys=[("run_id", "runs", "id")],
    )
    db["page_failures"].create_index(["run_id", "url"])
    db["site_attempts"].create(
        {"id": int, "run_id": int, "domain": str, "url": str, "final_url": str,
         "http_status": int, "address": str, "title": str, "lang": str, "server": str,
         "tls": str, "error": str},
        pk="id",
        foreign_keys=[("run_id", "runs", "id")],
    )
    db["site_attempts"].create_index(["run_id", "domain"])
    db["run_stages"].create(
        {"run_id": int, "stage": str, "status": str, "message": str, "finished_at": str},
        pk=("run_id", "stage"),
        foreign_keys=[("run_id", "runs", "id")],
    )
    db.create_view("run_counts", _RUN_COUNTS)


@migration
def m020_cjk_search(db: sqlite_utils.Database) -> None:
    """``pages_fts`` indexes the search form of titles and text (``crawler/search.py``), in
    which any piece of a Korean, Chinese or Japanese word is found, and ranks title matches
    first; it stores only the index, and ``pages_fts_pending`` queues what leaves it.  The old
    index (unicode61 over ``pages``, kept by triggers) is dropped and every page is indexed
    again."""
    from . import search

    for trigger in ("pages_ai", "pages_ad", "pages_au"):
        db.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    db.execute("DROP TABLE IF EXISTS pages_fts")
    search.create_index(db.conn)
    search.reindex(db.conn)


@migration
def m030_trap_decisions(db: sqlite_utils.Database) -> None:
    """What the crawl left out and why: each URL a trap rule cut, the rule and the page that
    linked it, so a researcher can see the edges of a snapshot."""
    db["traps"].create(
        {"id": int, "run_id": int, "domain": str, "url": str, "rule": str, "found_on": str},
        pk="id",
        foreign_keys=[("run_id", "runs", "id")],
    )
    db["traps"].create_index(["run_id", "domain"])


@migration
def m031_requisites(db: sqlite_utils.Database) -> None:
    """The images, stylesheets, scripts and fonts of captured pages: WARC records with a row
    each, so the report and Datasette can count what a replay of the site has."""
    db["requisites"].create(
        {"id": int, "run_id": int, "domain": str, "page_url": str, "url": str, "kind": str,
         "http_status": int, "content_type": str, "size": int, "sha256": str,
         "warc_file": str, "warc_offset": int, "error": str},
        pk="id",
        foreign_keys=[("run_id", "runs", "id")],
    )
    db["requisites"].create_index(["run_id", "domain"])


@migration
def m032_page_source(db: sqlite_utils.Database) -> None:
    """Who fetched a page, where it was not the Scrapy crawl: ``browser`` (headless Chromium,
    its text from the rendered DOM).  A table of its own, not a column of ``pages``: m040,
    which shipped first, froze the ``pages`` table as it made it."""
    db["page_sources"].create(
        {"page_id": int, "source": str}, pk="page_id", foreign_keys=[("page_id", "pages", "id")])


@migration
def m040_page_self_description(db: sqlite_utils.Database) -> None:
    """What a page says the site is: ``og:site_name`` and its schema.org JSON-LD ``@type``s."""
    db["pages"].add_column("site_name", str)
    db["pages"].add_column("schema_types", str)


@migration
def m050_dnssec_chains(db: sqlite_utils.Database) -> None:
    """What walking a signed zone's denial chain came to: whether the NSEC / NSEC3 chain
    closed back at the apex, its length, the queries it cost and (NSEC3) how many hashes
    no known name explains; per NSEC3 hash its opt-out flag and, once cracked, its name."""
    db["zones"].add_column("chain_closed", int)
    db["zones"].add_column("chain_length", int)
    db["zones"].add_column("chain_queries", int)
    db["zones"].add_column("chain_unknown", int)
    db["nsec3_hashes"].add_column("opt_out", int)
    db["nsec3_hashes"].add_column("name", str)
    db["nsec3_hashes"].add_column("named_by", str)


@migration
def m070_page_extract_errors(db: sqlite_utils.Database) -> None:
    """Why a page has no text or only part of it: its charset could not be decoded
    (``decode_error``), or extraction stopped at a step that raised (``extract_error``)."""
    db["pages"].add_column("decode_error", str)
    db["pages"].add_column("extract_error", str)


@migration
def m080_resume_records(db: sqlite_utils.Database) -> None:
    """What a resumed run needs so it neither redoes nor gains work.

    ``probe_phases``: each phase of a run's probe as it began (``marks``: the highest rowid of
    every probe table then, so what an unfinished phase wrote can be undone) and ended
    (``state``: what it hands on, its query counts and notes).  ``links.followed``: 1 when the
    crawl requested the link as a page (charged to the site's page budget), so a resumed
    crawl counts the budget as the interrupted one had spent it and requests only the links
    it had followed without an answer recorded.  ``pages.request_url``: the URL the request
    began at when a redirect ended at the page, so that URL is known answered."""
    db["probe_phases"].create(
        {"run_id": int, "phase": str, "marks": str, "state": str, "started_at": str,
         "finished_at": str},
        pk=("run_id", "phase"),
        foreign_keys=[("run_id", "runs", "id")],
    )
    db["links"].add_column("followed", int)
    db["pages"].add_column("request_url", str)


GUESS = "(source IS NOT 'label' AND coalesce(json_extract(evidence, '$.decided_by'), '') = 'name')"
"""A classification from the site's name alone (no usable content): a guess, not a tag."""

_RUN_COUNTS_GUESSED = _RUN_COUNTS.replace(
    "WHERE run_id = r.id AND label != 'unknown') AS tagged,",
    f"WHERE run_id = r.id AND label != 'unknown' AND NOT {GUESS}) AS tagged,\n"
    "    (SELECT count(DISTINCT domain) FROM classifications\n"
    f"        WHERE run_id = r.id AND label != 'unknown' AND {GUESS}) AS guessed,",
)


@migration
def m081_guessed_purposes(db: sqlite_utils.Database) -> None:
    """``run_counts.tagged`` counts purposes the site's content gave (or a human); a purpose
    guessed from the name alone is counted apart, as ``guessed``."""
    db.execute("DROP VIEW IF EXISTS run_counts")
    db.create_view("run_counts", _RUN_COUNTS_GUESSED)


@migration
def m082_probe_answers(db: sqlite_utils.Database) -> None:
    """``probe_answers``: the outcome of each question the small probe phases asked one at a
    time (zone discovery, seeds, NSEC walk, delegated domains), kept until the phase ends, so a
    phase redone after a kill answers them from here instead of asking again."""
    db["probe_answers"].create(
        {"run_id": int, "phase": str, "address": str, "port": int, "qname": str,
         "rdtype": str, "flags": int, "rcode": str, "error": str, "replied": int,
         "wire": bytes, "tries": int, "timeouts": int},
        foreign_keys=[("run_id", "runs", "id")],
    )
    db["probe_answers"].create_index(["run_id", "phase"])


def _has_column(db: sqlite_utils.Database, table: str, column: str) -> bool:
    return table in db.table_names() and column in db[table].columns_dict


def _view_sql(db: sqlite_utils.Database, name: str) -> str:
    row = db.execute("SELECT sql FROM sqlite_master WHERE type = 'view' AND name = ?",
                     [name]).fetchone()
    return row[0] if row else ""


# What each migration of a file without ``census_migrations`` left behind.
_LEGACY: dict[str, Callable[[sqlite_utils.Database], bool]] = {
    "m001_dns_census": lambda db: "runs" in db.table_names(),
    "m002_web_census": lambda db: "sites" in db.table_names(),
    "m003_history_views": lambda db: "domain_history" in db.view_names(),
    "m004_latest_census_views": lambda db: "axfr_history" in db.view_names(),
    "m005_latest_census_partial": lambda db: "'partial'" in _view_sql(db, "latest_census"),
    "m006_page_signals": lambda db: _has_column(db, "pages", "description"),
    "m010_truthful_runs": lambda db: "run_stages" in db.table_names(),
}


def applied(db: sqlite_utils.Database) -> list[str]:
    """Names of the migrations ``db`` has, in the order they were applied."""
    if "census_migrations" not in db.table_names():
        return []
    return [row[0] for row in db.execute("SELECT name FROM census_migrations ORDER BY rowid")]


def _adopt_legacy(db: sqlite_utils.Database) -> None:
    """Give a file from before named migrations its ``census_migrations`` table, listing only
    what it really has."""
    legacy = db.execute("PRAGMA user_version").fetchone()[0] > 0 or "runs" in db.table_names()
    db["census_migrations"].create({"name": str, "applied_at": str}, pk="name")
    if not legacy:
        return
    found = [name for name, has in _LEGACY.items() if has(db)]
    db["census_migrations"].insert_all(
        {"name": name, "applied_at": "before named migrations"} for name in found
    )


def apply(db: sqlite_utils.Database) -> list[str]:
    """Bring ``db`` up to the newest schema; return the names of the migrations it applied."""
    from .db import utcnow  # db imports this module

    if "census_migrations" not in db.table_names():
        with db.conn:
            _adopt_legacy(db)
    done = set(applied(db))
    ran = []
    for step in MIGRATIONS:
        if step.__name__ in done:
            continue
        with db.conn:
            step(db)
            db["census_migrations"].insert({"name": step.__name__, "applied_at": utcnow()})
            db.execute(f"PRAGMA user_version = {len(done) + len(ran) + 1}")
        ran.append(step.__name__)
    return ran
