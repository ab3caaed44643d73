"""The set-based SQL that finds each kind of change between runs ``:a`` and ``:b``.

Every comparison is SQL over indexed columns (temporary tables, ``EXCEPT`` and joins), so
diffing two censuses of a million domains stays in bounded memory: Python only ever holds
the changes themselves.  Each step adds its rows to ``temp.diff_out``.

Changes are reported at the highest level only: a domain that appeared or disappeared does
not also report its records, site, label and pages (``diff_gone``); a site that came up or
went down does not also report its status, title, certificate, label and pages
(``diff_quiet``).  The steps therefore run in order, each reading what the earlier ones
found.  Changed pages are only paired here (``diff_page_pairs``): their text diffs are made
in Python, one pair at a time.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from .kinds import RECORD_KINDS

TEMP_TABLES = (
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
    "diff_p_a",
    "diff_p_b",
    "diff_page_pairs",
)


def find_changes(conn: sqlite3.Connection, a: int, b: int) -> None:
    """Fill ``temp.diff_out`` (and ``diff_page_pairs``) with the changes from run a to run b.

    The temporary tables are dropped first: a comparison cut short earlier on this connection
    must not leave its rows in this one.
    """
    drop_temp_tables(conn)
    conn.execute(
        "CREATE TEMP TABLE diff_out (kind TEXT, subject TEXT, domain TEXT, before TEXT, "
        "after TEXT, detail TEXT)"
    )
    params = {"a": a, "b": b}
    for step in STEPS:
        for sql in step():
            conn.execute(sql, params)


def drop_temp_tables(conn: sqlite3.Connection) -> None:
    for table in TEMP_TABLES:
        conn.execute(f"DROP TABLE IF EXISTS temp.{table}")


def _each_run(*templates: str) -> list[str]:
    """The per-run statements, ``{r}`` filled in: all of run a's, then all of run b's."""
    return [sql.format(r=r) for r in "ab" for sql in templates]


def _domains() -> list[str]:
    per_run = (
        "CREATE TEMP TABLE diff_d_{r} (domain TEXT PRIMARY KEY, methods TEXT) WITHOUT ROWID",
        "INSERT INTO diff_d_{r} SELECT domain, group_concat(DISTINCT method) FROM sightings "
        "WHERE run_id = :{r} AND domain IS NOT NULL GROUP BY domain",
    )
    return [
        *_each_run(*per_run),
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
        *_each_run(per_run),
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
        *_each_run(*per_run),
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
        *_each_run(*per_run),
        "INSERT INTO diff_out SELECT 'label_changed', o.domain, o.domain, o.label, n.label, "
        "CASE WHEN o.source IS NOT n.source THEN o.source || ' -> ' || n.source "
        "ELSE n.source END FROM diff_l_a AS o JOIN diff_l_b AS n ON n.domain = o.domain "
        "WHERE o.label IS NOT n.label AND o.domain NOT IN (SELECT domain FROM diff_quiet)",
    ]


# A page's site and path: the URL without scheme and host ("http://" is 7 characters, so the
# first "/" from the 9th on ends the host of either scheme).
_PAGE_KEY = (
    "domain || ' ' || CASE WHEN instr(substr(url, 9), '/') THEN "
    "substr(url, instr(substr(url, 9), '/') + 8) ELSE '/' END"
)


def _url_rank(url: str) -> str:
    return f"((instr({url}, '://www.') > 0) * 2 + ({url} LIKE 'https:%'))"


# The name of a page seen in both runs: its bare host and http where either run has it so,
# whichever host each run happened to fetch it from.
_BOTH_URL = (
    f"CASE WHEN n.url IS NOT NULL AND {_url_rank('n.url')} < {_url_rank('o.url')} "
    "THEN n.url ELSE o.url END"
)


def _pages() -> list[str]:
    """Pages by what they answered: a page that answered (< 400) in run a and is absent or
    answers 404/410 in run b is removed; one that answers 5xx, another error or nothing
    (a timeout, recorded in ``page_failures``) is unreachable, not removed and not changed;
    its text is compared again once it answers.  A page that comes back is added.

    Pages are matched by site and path, not by URL: the crawl fetches each path of a site once,
    from whichever of its bare and ``www.`` hosts and http and https reached it first, and
    that can differ from run to run without the site changing."""
    quiet = "domain NOT IN (SELECT domain FROM diff_quiet)"
    per_run = (
        "CREATE TEMP TABLE diff_p_{r} (key TEXT PRIMARY KEY, url TEXT, domain TEXT, "
        "state TEXT, id INT, sha256 TEXT, title TEXT) WITHOUT ROWID",
        # the best answer per page: live, then gone, then unreachable
        f"INSERT INTO diff_p_{{r}} SELECT {_PAGE_KEY}, url, domain, state, id, sha256, title "
        "FROM (SELECT url, domain, CASE WHEN http_status < 400 THEN 'live' "
        "WHEN http_status IN (404, 410) THEN 'gone' ELSE 'unreachable' END AS state, id, "
        "sha256, title, row_number() OVER "
        f"(PARTITION BY {_PAGE_KEY} ORDER BY http_status >= 400, http_status NOT IN (404, 410), "
        # named by its bare host and http where the crawl has it so, as sites are
        f"{_url_rank('url')}, id DESC) AS rank "
        "FROM pages WHERE run_id = :{r}) WHERE rank = 1",
        f"INSERT OR IGNORE INTO diff_p_{{r}} SELECT {_PAGE_KEY}, url, domain, 'unreachable', "
        "NULL, NULL, NULL FROM page_failures WHERE run_id = :{r}",
    )
    return [
        *_each_run(*per_run),
        "INSERT INTO diff_out SELECT 'page_added', n.url, n.domain, o.state, n.sha256, "
        "n.title FROM diff_p_b AS n LEFT JOIN diff_p_a AS o ON o.key = n.key "
        "WHERE n.state = 'live' AND coalesce(o.state, 'gone') = 'gone' "
        f"AND n.{quiet}",
        f"INSERT INTO diff_out SELECT 'page_removed', {_BOTH_URL}, o.domain, o.sha256, "
        "coalesce('http ' || (SELECT http_status FROM pages WHERE id = n.id), NULL), o.title "
        "FROM diff_p_a AS o LEFT JOIN diff_p_b AS n ON n.key = o.key "
        f"WHERE o.state = 'live' AND coalesce(n.state, 'gone') = 'gone' AND o.{quiet}",
        f"INSERT INTO diff_out SELECT 'page_unreachable', {_BOTH_URL}, o.domain, o.sha256, "
        "coalesce('http ' || (SELECT http_status FROM pages WHERE id = n.id), (SELECT error "
        "FROM page_failures WHERE run_id = :b AND url = n.url LIMIT 1)), o.title "
        "FROM diff_p_a AS o JOIN diff_p_b AS n ON n.key = o.key "
        f"WHERE o.state = 'live' AND n.state = 'unreachable' AND o.{quiet}",
        f"CREATE TEMP TABLE diff_page_pairs AS SELECT {_BOTH_URL} AS url, o.domain AS domain, "
        "o.id AS id_a, n.id AS id_b FROM diff_p_a AS o JOIN diff_p_b AS n ON n.key = o.key "
        "WHERE o.state = 'live' AND n.state = 'live' "
        f"AND o.sha256 IS NOT n.sha256 AND o.{quiet}",
    ]


STEPS: tuple[Callable[[], list[str]], ...] = (
    _domains,
    _zones,
    _axfr,
    _records,
    _sites,
    _labels,
    _pages,
)
"""In order: later steps skip what ``diff_gone`` and ``diff_quiet`` say was reported."""
