"""Trap rules: which URLs the spider refuses to follow, and why."""

from __future__ import annotations

import datetime as dt

from crawler.crawl.traps import TrapFilter, TrapRules, family, url_date

TODAY = dt.date(2026, 12, 4)


def test_the_embedded_rules_load() -> None:
    rules = TrapRules.load()
    assert rules.max_url_length == 1024 and rules.max_chain == 3
    assert rules.regexes


def test_ordinary_urls_pass() -> None:
    traps = TrapFilter(today=TODAY)
    assert traps.why_trap("http://kcna.kp/kp/index.html") is None
    assert traps.why_trap("http://kcna.kp/list?page=2&lang=ko") is None


def test_each_kind_of_trap_is_named() -> None:
    traps = TrapFilter(today=TODAY)
    assert traps.why_trap("http://x.kp/" + "a" * 1100) == "url-too-long"
    query = "&".join(f"p{i}=1" for i in range(9))
    assert traps.why_trap(f"http://x.kp/?{query}") == "too-many-query-params"
    assert traps.why_trap("http://x.kp/a/b/a/b/a/") == "repeated-path-segment"
    assert traps.why_trap("http://x.kp/?sessionid=abc").startswith("regex:")
    assert traps.why_trap("http://x.kp/video.mp4").startswith("regex:")
    assert traps.why_trap("http://x.kp/events/2031/01/") == "future-date"


def test_a_family_is_cut_at_the_first_segment_with_a_digit() -> None:
    assert family("http://kcna.kp/ko/article/AR0125885.kcmsf") == "/ko/article/"
    assert family("http://x.kp/cal/2016/09/01/") == family("http://x.kp/cal/2016/10/")
    assert family("http://x.kp/news/list/2.html") != family("http://x.kp/news/123.html")
    assert family("http://x.kp/view.php?lang=ko&id=7") == "/view.php?lang=ko&"
    assert family("http://x.kp/about.html") is None


def test_dates_in_urls() -> None:
    assert url_date("http://x.kp/cal/2016/09/") == dt.date(2016, 9, 1)
    assert url_date("http://x.kp/news/2016-09-14.html") == dt.date(2016, 9, 14)
    assert url_date("http://x.kp/?d=20160914") == dt.date(2016, 9, 14)
    assert url_date("http://x.kp/article/AR0125885.kcmsf") is None


def test_a_family_linked_from_an_index_is_never_cut() -> None:
    traps = TrapFilter(today=TODAY)
    index = "http://news.kp/news/"
    verdicts = [traps.judge(f"http://news.kp/news/{n:05d}.html", index) for n in range(500)]
    assert all(v.why is None and v.chain == 0 for v in verdicts)


def test_a_chain_that_links_one_step_further_is_cut() -> None:
    traps = TrapFilter(TrapRules(max_chain=3), today=TODAY)
    url, chain, verdicts = "http://x.kp/", 0, []
    for n in range(1, 7):
        verdict = traps.judge(f"http://x.kp/archive/{n}/", url, chain)
        verdicts.append(verdict.why)
        url, chain = f"http://x.kp/archive/{n}/", verdict.chain
    assert verdicts == [None, None, None, None, "endless-chain", "endless-chain"]


def test_a_calendar_is_a_chain_through_its_days_too() -> None:
    traps = TrapFilter(TrapRules(max_chain=2), today=TODAY)
    month = traps.judge("http://x.kp/cal/2016/09/", "http://x.kp/")
    day = traps.judge("http://x.kp/cal/2016/09/01/", "http://x.kp/cal/2016/09/", month.chain)
    back = traps.judge("http://x.kp/cal/2016/08/", "http://x.kp/cal/2016/09/01/", day.chain)
    assert (month.chain, day.chain, back.why) == (0, 1, None)
    assert traps.judge("http://x.kp/cal/2016/07/", "http://x.kp/cal/2016/08/",
                       back.chain).why == "endless-chain"


def test_rules_are_data() -> None:
    rules = TrapRules.load("max-url-length 50\n# a comment\nregex /private/\n")
    traps = TrapFilter(rules)
    assert traps.why_trap("http://x.kp/" + "a" * 60) == "url-too-long"
    assert traps.why_trap("http://x.kp/private/1") == "regex:/private/"


def test_a_url_that_does_not_split_is_a_trap_not_an_exception() -> None:
    from crawler.crawl.traps import TrapFilter

    assert TrapFilter().why_trap("http://[") == "bad-url"  # found by tests/fuzz
