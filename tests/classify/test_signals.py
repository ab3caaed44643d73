"""What the classifier reads of a crawled site."""

from __future__ import annotations

from pathlib import Path

import pytest

from crawler.classify import classify_run
from crawler.classify.signals import site_docs
from crawler.db import open_census, start_run
from crawler.errors import STOP


def test_an_error_page_does_not_speak_for_its_site(tmp_path: Path) -> None:
    """sdprk.org.kp's pages declare a charset nobody can decode, so the census keeps no text of
    them; its one readable page is a 404.  "Not Found" is the server's word, not the site's: the
    site has no usable content and gets at most a guess from its name."""
    db = open_census(tmp_path / "census.db")
    run_id = start_run(db, "kp", {})
    db["domains"].insert({"name": "sdprk.org.kp", "suffix": "org.kp",
                          "first_seen_run": run_id, "last_seen_run": run_id})
    db["sites"].insert({"run_id": run_id, "domain": "sdprk.org.kp", "alive": 1,
                        "url": "http://sdprk.org.kp/", "http_status": 200, "pages": 2})
    db["pages"].insert({"run_id": run_id, "domain": "sdprk.org.kp", "depth": 0,
                        "url": "http://sdprk.org.kp/", "http_status": 200,
                        "charset": "KPS-9566"})
    error = db["pages"].insert({"run_id": run_id, "domain": "sdprk.org.kp", "depth": 1,
                        "url": "http://sdprk.org.kp/news.html", "http_status": 404,
                        "title": "Not Found", "text": "Not Found. The requested URL was not "
                        "found on this server. Apache Server at sdprk.org.kp Port 80",
                        "headings": '["Not Found"]'}).last_pk
    db["links"].insert({"run_id": run_id, "page_id": error, "to_url": "http://sdprk.org.kp/x",
                        "to_host": "sdprk.org.kp", "internal": 1, "how": "href",
                        "anchor": "Apache Server home", "followed": 1})
    db.conn.commit()
    (doc,) = site_docs(db, run_id)
    assert (doc.title, doc.text, doc.headings, doc.anchors) == ("", "", [], [])
    (result,) = classify_run(db, run_id)
    assert result.guess or result.label == "unknown", result.evidence
    assert result.confidence <= 0.3 or result.label == "unknown"


def test_a_stop_whose_interrupt_was_swallowed_ends_classify_before_its_next_batch(
        tmp_path: Path) -> None:
    db = open_census(tmp_path / "census.db")
    run_id = start_run(db, "kp", {})
    db["domains"].insert({"name": "kcna.kp", "suffix": "kp", "first_seen_run": run_id,
                          "last_seen_run": run_id})
    db["sites"].insert({"run_id": run_id, "domain": "kcna.kp", "alive": 1,
                        "url": "http://kcna.kp/", "http_status": 200, "title": "KCNA"})
    db.conn.commit()
    STOP.set()
    try:
        with pytest.raises(KeyboardInterrupt):
            classify_run(db, run_id)
    finally:
        STOP.clear()
    assert db.execute("SELECT count(*) FROM classifications").fetchone() == (0,)
