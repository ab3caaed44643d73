"""Trap rules: which URLs the spider refuses to follow, and why."""

from __future__ import annotations

from crawler.crawl.traps import TrapFilter, TrapRules


def test_the_embedded_rules_load() -> None:
    rules = TrapRules.load()
    assert rules.max_url_length == 1024 and rules.max_pattern == 25
    assert rules.regexes


def test_ordinary_urls_pass() -> None:
    traps = TrapFilter()
    assert traps.why_trap("http://kcna.kp/kp/index.html", "kcna.kp") is None
    assert traps.why_trap("http://kcna.kp/list?page=2&lang=ko", "kcna.kp") is None


def test_each_kind_of_trap_is_named() -> None:
    traps = TrapFilter()
    site = "korfilm.com.kp"
    assert traps.why_trap("http://x.kp/" + "a" * 1100, site) == "url-too-long"
    query = "&".join(f"p{i}=1" for i in range(9))
    assert traps.why_trap(f"http://x.kp/?{query}", site) == "too-many-query-params"
    assert traps.why_trap("http://x.kp/a/b/a/b/a/", site) == "repeated-path-segment"
    assert traps.why_trap("http://x.kp/?sessionid=abc", site).startswith("regex:")
    assert traps.why_trap("http://x.kp/video.mp4", site).startswith("regex:")


def test_a_calendar_is_cut_after_its_pattern_budget() -> None:
    traps = TrapFilter(TrapRules(max_pattern=3))
    months = [f"http://korfilm.com.kp/festival/calendar/2026/{m:02d}/" for m in range(1, 7)]
    verdicts = [traps.why_trap(url, "korfilm.com.kp") for url in months]
    assert verdicts == [None, None, None, "pattern-budget", "pattern-budget", "pattern-budget"]
    # the budget is per site
    assert traps.why_trap(months[0].replace("korfilm.com.kp", "kcna.kp"), "kcna.kp") is None


def test_rules_are_data() -> None:
    rules = TrapRules.load("max-url-length 50\n# a comment\nregex /private/\n")
    traps = TrapFilter(rules)
    assert traps.why_trap("http://x.kp/" + "a" * 60, "x.kp") == "url-too-long"
    assert traps.why_trap("http://x.kp/private/1", "x.kp") == "regex:/private/"


def test_a_url_that_does_not_split_is_a_trap_not_an_exception() -> None:
    from crawler.crawl.traps import TrapFilter

    assert TrapFilter().why_trap("http://[", "kcna.kp") == "bad-url"  # found by tests/fuzz
