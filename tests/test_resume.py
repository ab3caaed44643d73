"""A census a cron job can trust: killed or stopped in any stage, it resumes to the same rows.

One lab serves three censuses of the same world: an uninterrupted run (the baseline), a run
killed with SIGKILL in each stage in turn and resumed after each kill, and a run stopped with
SIGTERM in each stage in turn (each stop must end ``interrupted`` within 10 s) and resumed.
The lab's web log says no page was fetched more often than in the uninterrupted run.

``census run`` runs as a real process (``tests/stagedriver.py``), so signals reach it as they
would under systemd or ``timeout``; the driver holds the stage to be interrupted open for a
while after its work, so classify and compare, which take a second, can be caught too.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import dns.rdatatype
import pytest

from crawler.lab import Lab, free_port, load_world

# three lab censuses, one killed or stopped in each stage: minutes, not the default 120 s
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

STAGES = ("probe", "crawl", "classify", "compare")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    world = load_world("kp")
    addresses = world.addresses()
    the_lab = Lab(world, free_port(addresses), free_port(addresses), free_port(addresses))
    with the_lab:
        yield the_lab


def flags(lab: Lab) -> list[str]:
    """The flags ``census lab`` prints, with the speed of a test."""
    return [*lab.flags().split(), "--qps", "1000", "--timeout", "1", "--delay", "0",
            "--download-timeout", "3", "--max-pages", "30"]


def start(args: list[str], hold: str | None = None,
          held: Path | None = None) -> subprocess.Popen[str]:
    """``census ARGS`` as its own process; ``hold`` keeps that stage open after its work
    (``tests/stagedriver.py``), creating ``held`` as it starts to wait."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if held is not None:
        env["CENSUS_TEST_HELD"] = str(held)
    return subprocess.Popen(
        [sys.executable, "-m", "tests.stagedriver", hold or "-", *args],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def one(db: Path, sql: str, *params: object) -> object:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            row = conn.execute(sql, params).fetchone()
    except sqlite3.OperationalError:  # not created yet
        return None
    return row[0] if row else None


# What shows a stage is under way (besides runs.stage): the kill lands mid-work.
UNDER_WAY = {
    "probe": "SELECT count(*) >= 5 FROM sightings",
    "crawl": "SELECT count(*) >= 20 FROM pages",
    "classify": "SELECT 1",
    "compare": "SELECT 1",
}


def wait_for_stage(db: Path, process: subprocess.Popen[str], stage: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        if one(db, "SELECT stage FROM runs ORDER BY id DESC LIMIT 1") == stage and one(
            db, UNDER_WAY[stage]
        ):
            return
        time.sleep(0.05)
    raise AssertionError(f"the run never reached {stage}")


def web_log(lab: Lab, since: int) -> Counter[str]:
    """Requests the lab's web servers received, as page keys (robots.txt too)."""
    assert lab.web is not None
    return Counter(page_key(logged_url(*r)) for r in lab.web.requests[since:])


def logged_url(scheme: str, host: str, path: str) -> str:
    return f"{scheme}://{host.rsplit(':', 1)[0]}{path}"


def rows(db: Path) -> dict[str, list[tuple[object, ...]]]:
    """What a run holds, apart from times, ids and file offsets."""
    queries = {
        "sightings": "SELECT name, domain, method, source FROM sightings",
        "dns_records": "SELECT DISTINCT name, type, value FROM dns_records",
        "axfr": "SELECT zone, ns_name, address, outcome, records FROM axfr_attempts",
        "leads": "SELECT name, rcode, confirmed FROM leads",
        "sites": "SELECT domain, url, final_url, http_status, alive, title, pages, error "
                 "FROM sites",
        "pages": "SELECT url, http_status, sha256, title, lang, depth FROM pages",
        "failures": "SELECT url, error FROM page_failures",
        "classifications": "SELECT domain, label FROM classifications",
        "status": "SELECT status FROM runs",
    }
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        found = {name: conn.execute(sql).fetchall() for name, sql in queries.items()}
    # a page is a path of a site: its bare and www. hosts, http and https, serve one site, and
    # which of them a page is first linked from depends on which robots.txt came back first
    for name in ("pages", "failures"):
        found[name] = [(page_key(row[0]), *row[1:]) for row in found[name]]
    return {name: sorted(table, key=repr) for name, table in found.items()}


def page_key(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{host.removeprefix('www.')}{parts.path or '/'}?{parts.query}"


def unrecorded(db: Path, lab: Lab, since: int) -> set[str]:
    """Requests the lab received that the census has no record of (pages, failures, start
    URLs, page requisites, what the browser saw of the sites it captured) and whose response
    the crawl's WARC does not hold either: those in flight when the run was killed."""
    from crawler.crawl.resume import warc_captures

    assert lab.web is not None
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        recorded = {url for (url,) in conn.execute(
            "SELECT url FROM pages UNION SELECT url FROM page_failures "
            "UNION SELECT url FROM site_attempts UNION SELECT final_url FROM site_attempts "
            "UNION SELECT url FROM requisites")}
        captured = {domain for (domain,) in conn.execute(
            "SELECT domain FROM pages JOIN page_sources ON page_id = pages.id "
            "WHERE source = 'browser'")}
    recorded |= browser_records(db.parent / "warc", captured)
    recorded |= set(warc_captures(db.parent / "warc", 1).records)  # answered from there
    return {
        page_key(logged_url(*r)) for r in lab.web.requests[since:]
        if logged_url(*r) not in recorded
    }


def browser_records(folder: Path, captured: set[str]) -> set[str]:
    """URLs of the responses the browser capture wrote to its WARC for the sites it finished
    (a site's pages are stored once it is done; one cut short is captured again): the
    requests of a page's scripts are recorded only there."""
    from urllib.parse import urlsplit

    from warcio.archiveiterator import ArchiveIterator

    found = set()
    for path in folder.glob("*-browser-*.warc.gz"):
        with open(path, "rb") as fh:
            try:
                for record in ArchiveIterator(fh):
                    url = record.rec_headers.get_header("WARC-Target-URI") or ""
                    host = urlsplit(url).hostname or ""
                    if record.rec_type == "response" and any(
                            host == d or host.endswith("." + d) for d in captured):
                        found.add(url)
            except Exception:  # the end of a file the kill cut short
                pass
    return found


@pytest.fixture(scope="module")
def baseline(lab: Lab, tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[Path, Counter[str]]:
    db = tmp_path_factory.mktemp("baseline") / "census.db"
    since = len(lab.web.requests) if lab.web else 0
    asked = lab.dns.questions.copy()
    process = start(["run", "kp", "--db", str(db), "--out", str(db.parent), *flags(lab)])
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    BASE_QUESTIONS.update(lab.dns.questions - asked)
    return db, web_log(lab, since)


BASE_QUESTIONS: Counter[tuple[str, int]] = Counter()
"""The DNS questions the uninterrupted run asked."""


def test_sigkill_in_each_stage_then_resume_gives_the_uninterrupted_rows(
    lab: Lab, baseline: tuple[Path, Counter[str]], tmp_path: Path
) -> None:
    base_db, base_log = baseline
    db = tmp_path / "census.db"
    since = len(lab.web.requests) if lab.web else 0
    args = ["run", "kp", "--db", str(db), "--out", str(tmp_path), *flags(lab)]
    in_flight: set[str] = set()
    asked = lab.dns.questions.copy()
    for stage in STAGES:
        process = start(args, hold=stage)
        wait_for_stage(db, process, stage)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        in_flight |= unrecorded(db, lab, since)
        args = ["run", "--resume", "--db", str(db)]
    process = start(args)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    assert "resumed after an interruption during compare" in output
    assert one(db, "SELECT count(*) FROM runs") == 1
    assert rows(db) == rows(base_db)
    # a page is fetched again only if its answer reached neither the census nor the WARC:
    # the request was in flight when the process was killed (never completely received).
    # Start URLs (their certificate is in the WARC), revisits and robots.txt are read back:
    # turning that off makes this fail (robots.txt of every origin asked again).
    fetched = web_log(lab, since)
    again = {k for k, n in fetched.items() if n > base_log[k]}
    assert again <= in_flight, (again - in_flight, in_flight)
    assert len(in_flight) <= 16  # at most CONCURRENT_REQUESTS
    # the probe asks again only what was in flight at its kill: two windows of a sweep at
    # most (answers of the other phases are kept, ``probe_answers``; measured: 1)
    asked = lab.dns.questions - asked
    dns_again = {q: n - BASE_QUESTIONS[q] for q, n in asked.items()
                 if q in BASE_QUESTIONS and n > BASE_QUESTIONS[q]}
    assert sum(dns_again.values()) <= 2 * 4, dns_again
    diff = start(["diff", "--db", str(db)])
    output, _ = diff.communicate(timeout=60)
    assert "need two finished runs of .kp to compare, found 1" in output  # it counts


def test_sigterm_in_each_stage_stops_within_ten_seconds(
    lab: Lab, baseline: tuple[Path, Counter[str]], tmp_path: Path
) -> None:
    base_db, _ = baseline
    db = tmp_path / "census.db"
    args = ["run", "kp", "--db", str(db), "--out", str(tmp_path), *flags(lab)]
    for stage in STAGES:
        process = start(args, hold=stage)
        wait_for_stage(db, process, stage)
        stopped_at = time.monotonic()
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
        took = time.monotonic() - stopped_at
        assert took < 10, f"{stage}: {took:.1f} s"
        assert "stopping…" in output and "leaked semaphore" not in output, output
        assert one(db, "SELECT status FROM runs") == "interrupted", output
        assert one(db, "SELECT message FROM runs") == f"interrupted during {stage}"
        args = ["run", "--resume", "--db", str(db)]
    process = start(args)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    assert rows(db) == rows(base_db)


PROBE_ROWS = {
    "sightings": "SELECT name, domain, method, source FROM sightings",
    "dns_records": "SELECT name, type, ttl, value FROM dns_records",
    "axfr": "SELECT zone, ns_name, address, outcome, records FROM axfr_attempts",
    "nameservers": "SELECT zone, ns_name, address, source FROM nameservers",
    "zones": "SELECT zone, parent, soa_serial, wildcard, chain_closed, chain_length FROM zones",
    "nsec3": "SELECT zone, hash, name FROM nsec3_hashes",
    "domains": "SELECT name, first_seen_run, last_seen_run FROM domains",
    "status": "SELECT status FROM runs",
}


def probe_rows(db: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return {name: sorted(conn.execute(sql).fetchall(), key=repr)
                for name, sql in PROBE_ROWS.items()}


def held_then_killed(args: list[str], hold: str, held: Path) -> None:
    process = start(args, hold=hold, held=held)
    deadline = time.monotonic() + 120
    while not held.exists():
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        assert time.monotonic() < deadline, f"never held at {hold}"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    held.unlink()


def checkpoint_of(db: Path, phase: str) -> dict[str, int]:
    """Questions settled per part of the unfinished ``phase``, as its checkpoint says."""
    state = one(db, "SELECT state FROM probe_phases WHERE phase = ? AND finished_at IS NULL",
                phase)
    assert state, f"{phase} stored no checkpoint"
    return json.loads(str(state))["parts"]


def answers_kept(db: Path, phase: str) -> int:
    """Answers the unfinished ``phase`` kept (:mod:`crawler.probe.answers`)."""
    assert one(db, "SELECT count(*) FROM probe_phases WHERE phase = ? AND finished_at IS NULL",
               phase), f"{phase} is not the phase cut"
    return int(one(db, "SELECT count(*) FROM probe_answers WHERE phase = ?", phase) or 0)


def probe_message(db: Path) -> str:
    return str(one(db, "SELECT message FROM run_stages WHERE stage = 'probe'"))


def test_a_probe_cut_mid_phase_resumes_without_asking_a_settled_question_again(
    lab: Lab, tmp_path: Path
) -> None:
    """Killed in the middle of each phase that asks questions -- the zones' nameserver
    discovery, the seeds, the wordlist sweep, the NSEC questions, the PTR sweep, the delegated
    domains, the record phase -- the probe resumes each time where it stood: no zone transfer,
    no settled question of a sweep and no question answered before (kept in
    ``probe_answers``) is asked again, only what was in flight at a kill (two windows per
    sweep kill, a window of four per kill of the seeds or delegated domains), and the rows and
    counts equal an uninterrupted probe's.  Killed after five zone transfers, it asks none of
    them again."""
    speed = ["--qps", "1000", "--timeout", "1"]
    words = lab.flags().split()
    dns_flags = [w for i, w in enumerate(words)
                 if not w.startswith("--http") and not (i and words[i - 1].startswith("--http"))
                 and w != "--no-seeds"]
    base = tmp_path / "base.db"
    before = lab.dns.questions.copy()
    process = start(["probe", "kp", "--db", str(base), *dns_flags, *speed])
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    base_asked = lab.dns.questions - before

    db, held = tmp_path / "census.db", tmp_path / "held"
    before, types = lab.dns.questions.copy(), lab.dns.types.copy()
    args = ["probe", "kp", "--db", str(db), *dns_flags, *speed]
    # (hold, phase, most it asks): a sweep after its 50th checkpoint, a small phase after
    # its N-th stored answer (the uninterrupted probe: zones 121, seeds 22, nsec 15, delegated 2)
    for hold, phase, total in (("zones%60", "zones", 121), ("seeds%10", "seeds", 22),
                               ("wordlist@50", "wordlist", None), ("nsec%8", "nsec", 15),
                               ("ptr@50", "ptr", 1024), ("delegated%1", "delegated", 2),
                               ("records@50", "records", None)):
        held_then_killed(args, f"probe:{hold}", held)
        sweep = "@" in hold
        done = sum(checkpoint_of(db, phase).values()) if sweep else answers_kept(db, phase)
        assert 0 < done < (total or 10**9), (phase, done)
        args = ["run", "--resume", "--db", str(db)]
    assert one(db, "SELECT group_concat(phase) FROM probe_phases WHERE finished_at IS NOT NULL "
                   "ORDER BY rowid") == "zones,seeds,wordlist,nsec,crack,ptr,delegated"
    process = start(args)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    assert "resumed after an interruption during probe" in output
    asked = lab.dns.questions - before
    assert (lab.dns.types - types)[dns.rdatatype.AXFR] == base_asked_axfr(base_asked)
    # asked more often than by the uninterrupted probe: in flight at one of the kills (none
    # in the zones or nsec phases, which ask one question at a time)
    again = {q: n - base_asked[q] for q, n in asked.items() if q in base_asked
             and n > base_asked[q]}
    assert sum(again.values()) <= 3 * 2 * 4 + 2 * 4, again  # two windows (4 queries) per sweep
    assert one(db, "SELECT count(*) FROM probe_answers") == 0  # forgotten once done
    assert probe_rows(db) == probe_rows(base)
    assert probe_message(db) == probe_message(base)  # "N queries answered, T timeouts"

    # killed after five of its zone transfers: those are read back, not asked again (nor are
    # the discovery's answers stored before the kill)
    db = tmp_path / "zones.db"
    types = lab.dns.types.copy()
    held_then_killed(["probe", "kp", "--db", str(db), *dns_flags, *speed], "probe:zones#5", held)
    assert one(db, "SELECT count(*) FROM axfr_attempts") == 5
    process = start(["run", "--resume", "--db", str(db)])
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    assert (lab.dns.types - types)[dns.rdatatype.AXFR] == base_asked_axfr(base_asked)
    assert probe_rows(db) == probe_rows(base)
    assert probe_message(db) == probe_message(base)


def base_asked_axfr(asked: Counter[tuple[str, int]]) -> int:
    return sum(n for (_, rdtype), n in asked.items() if rdtype == dns.rdatatype.AXFR)
