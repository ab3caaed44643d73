"""Extraction of what a page says, from bytes as they come off the wire."""

import time

import pytest

from crawler.crawl.extract import KPS_9566, MAX_BODY, decode_body, extract, js_links, language_of

KOREAN = ("<html><head><title>로동신문</title></head>"
          "<body><p>조선로동당 중앙위원회 기관지</p></body></html>")
KPS_HEADER = {"content-type": "text/html; charset=KPS-9566"}
EUC_HEADER = {"Content-Type": "text/html; charset=euc-kr"}
LATIN_HEADER = {"Content-Type": "text/html; charset=iso-8859-1"}


def test_euc_kr_from_header():
    body = KOREAN.encode("euc-kr")
    assert b"\xb7\xce\xb5\xbf" in body  # 로동 in EUC-KR
    page = extract(body, "http://rodong.rep.kp/", {"Content-Type": "text/html; charset=EUC-KR"})
    assert page.charset == "euc-kr"
    assert page.decode_error is None
    assert page.title == "로동신문"
    assert "기관지" in page.text


def test_euc_kr_from_meta_only():
    html = KOREAN.replace("<head>", '<head><meta http-equiv="Content-Type" '
                          'content="text/html; charset=euc-kr">')
    page = extract(html.encode("euc-kr"), "http://rodong.rep.kp/", {"Content-Type": "text/html"})
    assert page.charset == "euc-kr"
    assert page.title == "로동신문"


def test_undeclared_legacy_bytes_fall_back_to_cp949():
    text, charset, error = decode_body(KOREAN.encode("cp949"))
    assert charset == "cp949" and "로동신문" in text and error is None


@pytest.mark.parametrize("alias", ["KPS-9566", "kps9566", "KPS_9566", "ks_c_9566", "KPS 9566-2003"])
def test_kps_9566_is_never_decoded(alias):
    body = KOREAN.replace("<head>", f'<head><meta charset="{alias}">').encode("euc-kr")
    body = body.replace(b"</p>", b'</p><a href="/program.html">x</a>')
    page = extract(body, "http://sdprk.org.kp/", None)
    assert page.text is None and page.title is None
    assert page.decode_error.startswith(f"undecodable charset {KPS_9566}")
    assert [link.url for link in page.links] == ["http://sdprk.org.kp/program.html"]
    assert page.links[0].text == ""  # anchor text would be mojibake


def test_kps_9566_header_wins_and_ascii_body_is_fine():
    page = extract(b"<title>Hello</title>", "http://x.kp/", KPS_HEADER)
    assert page.title == "Hello" and page.decode_error is None


def test_wrong_declaration_falls_back_to_what_decodes():
    page = extract(KOREAN.encode("utf-8"), "http://x.kp/", EUC_HEADER)
    assert page.charset == "utf-8" and page.title == "로동신문"
    assert "euc-kr" in page.decode_error


def test_unknown_charset_is_recorded():
    page = extract(KOREAN.encode(), "http://x.kp/", {"Content-Type": "text/html; charset=x-no"})
    assert page.title == "로동신문" and "x-no" in page.decode_error


def test_bom_beats_header():
    page = extract(b"\xef\xbb\xbf" + KOREAN.encode(), "http://x.kp/", LATIN_HEADER)
    assert page.charset == "utf-8" and page.title == "로동신문"


@pytest.mark.parametrize(("text", "lang", "source"), [
    ("조선민주주의인민공화국의 수도는 평양입니다", "ko", "script"),
    ("朝鲜民主主义人民共和国的首都是平壤，欢迎来旅游", "zh", "script"),
    ("朝鮮民主主義人民共和国の首都は平壌です。ご案内します", "ja", "script"),
    ("Голос Кореи ведёт радиовещание из Пхеньяна", "ru", "script"),
    ("The Pyongyang Times is a weekly newspaper published in English", "en", "detector"),
    ("La Voix de la Corée diffuse depuis Pyongyang des nouvelles", "fr", "detector"),
    ("La Voz de Corea transmite desde Pyongyang noticias, música y programas", "es", "detector"),
])
def test_language_of(text, lang, source):
    found, confidence, how = language_of(text)
    assert (found, how) == (lang, source)
    assert 0 < confidence <= 1


def test_language_of_nothing():
    assert language_of("") == (None, None, None)
    assert language_of("12 34") == (None, None, None)


def test_declared_language_and_contradicted_declaration():
    page = extract(b'<html lang="ru-RU"><body><p>Hello world, this is English</p></body></html>',
                   "http://vok.rep.kp/ru/", None)
    assert (page.lang, page.lang_source) == ("ru", "declared")
    sentence = "조선중앙통신사는 국가통신사이다. " * 5
    korean = f'<html lang="en"><body><p>{sentence}</p></body></html>'
    page = extract(korean.encode(), "http://kcna.kp/", None)
    assert (page.lang, page.lang_source) == ("ko", "script")


def test_javascript_links_are_recovered():
    html = """<html><body>
    <a href="#" onclick="fn_showArticle('AR0125885', 'ko')">기사</a>
    <a href="javascript:fn_showArticle('AR0125888')">지난 기사</a>
    <a href="javascript:goPage('/ko/news/')">소식</a>
    <div onclick="location.href='/popup.html'">팝업</div>
    <script>window.open('/notice.html', 'n');</script>
    <meta http-equiv="refresh" content="5; url=/kp/index.html">
    </body></html>"""
    page = extract(html.encode(), "https://kcna.kp/kp/", None)
    links = {(link.url, link.how) for link in page.links}
    assert ("https://kcna.kp/ko/article/AR0125885.kcmsf", "js") in links
    assert ("https://kcna.kp/ko/article/AR0125888.kcmsf", "js") in links
    assert ("https://kcna.kp/ko/news/", "js") in links
    assert ("https://kcna.kp/kp/index.html", "meta-refresh") in links
    assert not any(url.endswith("#") for url, _ in links)


def test_js_links_pattern_language():
    assert js_links("fn_showArticle(\"AR1\", \"en\")") == ["/en/article/AR1.kcmsf"]


def test_links_text_headings_and_boilerplate():
    html = """<html><head><title> Air  Koryo </title><meta name="description" content="Flights">
    <base href="http://airkoryo.com.kp/en/"></head><body>
    <nav><a href="/">Home</a></nav><h1>Air Koryo</h1><p>Flights to   Beijing.</p>
    <script>var x = "not text";</script><style>p {}</style>
    <a href="schedule.html#today">Schedule</a> <img src="/logo.png" alt="logo">
    <a href="mailto:info@airkoryo.com.kp">mail</a> <a href="http://WWW.KFTRADE.com.kp./">trade</a>
    <footer>Copyright</footer></body></html>"""
    page = extract(html.encode(), "http://airkoryo.com.kp/", None)
    assert page.title == "Air Koryo" and page.description == "Flights"
    assert page.headings == ["Air Koryo"]
    assert "Flights to Beijing." in page.text
    assert "not text" not in page.text and "Copyright" not in page.text and "Home" not in page.text
    urls = {(link.url, link.host, link.how) for link in page.links}
    assert ("http://airkoryo.com.kp/en/schedule.html", "airkoryo.com.kp", "href") in urls
    assert ("http://airkoryo.com.kp/logo.png", "airkoryo.com.kp", "src") in urls
    assert any(host == "www.kftrade.com.kp" for _, host, _ in urls)
    assert not any("mailto" in url for url, _, _ in urls)
    assert "Schedule" in page.anchors


def test_malformed_html_does_not_crash():
    from crawler.lab.webserver import malformed_html

    page = extract(malformed_html(), "http://x.kp/", None)
    assert page.text is not None
    for body in (b"", b"\x00\x00", b"<", b"<html><body>" + b"<div>" * 100_000, b"\xff" * 1000):
        extract(body, "http://x.kp/", {"Content-Type": "text/html"})


def test_huge_page_is_bounded_and_fast():
    body = b"<html><body>" + b"<p>" + b"word " * 2_000_000 + b"</p></body></html>"
    started = time.monotonic()
    page = extract(body, "http://x.kp/", None)
    assert time.monotonic() - started < 5
    assert page.truncated and len(body) > MAX_BODY
    assert len(page.text) <= 100_000


def test_what_the_page_says_the_site_is():
    html = b"""<html><head><title>Startseite</title>
    <meta property="og:site_name" content="Deutscher Handballbund">
    <script type="application/ld+json">{"@context": "https://schema.org", "@graph": [
      {"@type": "WebPage", "name": "Startseite"},
      {"@type": ["SportsOrganization", "Organization"], "name": "DHB"}]}</script>
    <script type="application/ld+json">{"@type": "NewsArticle",
      "publisher": {"@type": "NewsMediaOrganization"}}</script>
    <script type="application/ld+json">{not json</script>
    </head><body><p>Willkommen</p></body></html>"""
    got = extract(html, "https://dhb.example/")
    assert got.site_name == "Deutscher Handballbund"
    assert got.schema_types == ["WebPage", "SportsOrganization", "Organization", "NewsArticle",
                                "NewsMediaOrganization"]
    assert "Willkommen" in got.text and "@graph" not in got.text


def test_a_page_without_self_description():
    got = extract(b"<html><head><title>x</title></head><body>y</body></html>", "http://a/")
    assert got.site_name is None and got.schema_types == []


# Regression cases from the fuzz suite (tests/fuzz/): each once raised out of extract().


def test_base_href_with_an_unclosed_ipv6_literal_is_ignored():
    from crawler.lab.faults import BAD_BASE

    page = extract(BAD_BASE, "http://x.kp/", {"Content-Type": "text/html; charset=utf-8"})
    assert page.extract_error is None and page.title == "bad base"
    assert [link.url for link in page.links] == ["http://x.kp/_fault/ok-after-base"]


@pytest.mark.parametrize("headers", [None, {"Content-Type": "text/html"},
                                     {"Content-Type": "text/html; charset=x-nonsense"}])
def test_nul_and_control_characters_never_reach_lxml(headers):
    from crawler.lab.faults import CONTROL_CHARS

    page = extract(CONTROL_CHARS, "http://x.kp/", headers)
    assert page.extract_error is None
    assert page.title == "control chars" and "조선" in page.text and "tail" in page.text
    assert [link.url for link in page.links] == ["http://x.kp/_fault/ok-after-controls"]


@pytest.mark.parametrize("reference", ["&#x1;", "&#0;", "&#xB;", "&#31;", "<&#x1;p>"])
def test_character_references_to_control_characters_never_reach_lxml(reference):
    from crawler.crawl.extract.text import NOT_XML

    body = f"<title>t</title><body>{reference}<p>text</p><a href='/a'>a</a></body>".encode()
    page = extract(body, "http://x.kp/", None)
    assert page.extract_error is None and page.text.endswith("text\na")
    assert not NOT_XML.search(page.text)  # no control character stored either


def test_a_step_that_raises_keeps_what_came_before_it(monkeypatch):
    """The contract for bugs not found yet: the page keeps its links up to the failing one,
    and the error says which step failed."""
    import crawler.crawl.extract.links as links

    real = links._absolute

    def third_raises(base, ref):
        if ref == "/3":
            raise RuntimeError("boom")
        return real(base, ref)

    monkeypatch.setattr(links, "_absolute", third_raises)
    body = b"<title>t</title>" + b"".join(b'<a href="/%d">%d</a>' % (i, i) for i in range(1, 6))
    page = extract(body, "http://x.kp/", None)
    assert page.extract_error == "links: RuntimeError: boom"
    assert [link.url for link in page.links] == ["http://x.kp/1", "http://x.kp/2"]
    assert page.text is None and page.charset == "utf-8"


def test_links_found_by_the_fuzzer_are_followable():
    """An upper-case scheme was stored as written and never followed; a control character
    before the scheme once made "httpss://"."""
    from crawler.crawl.extract.links import _absolute

    page = extract(b'<a href="HTTP://kcna.kp/a">a</a><a href="http://a[::1]/">b</a>',
                   "http://x.kp/", None)
    assert page.links[0].url == "http://kcna.kp/a"
    assert _absolute("http://kcna.kp/", "\x00https://a") == ("https://a", "a")


def test_json_ld_nested_past_the_parsers_stack_is_skipped():
    body = (b'<title>t</title><script type="application/ld+json">' + b"[" * 50_000
            + b'</script><script type="application/ld+json">{"@type": "NewsMediaOrganization"}'
            b"</script><p>text</p>")
    page = extract(body, "http://x.kp/", None)
    assert page.extract_error is None and page.text == "text"
    assert page.schema_types == ["NewsMediaOrganization"]


def test_runs_of_spaces_collapse_as_the_spaces_regex_does():
    """``collapse_spaces`` is a cheaper ``SPACES.sub(" ", ...)``: same text out, always."""
    import random

    from crawler.crawl.extract.text import SPACES, collapse_spaces

    rng = random.Random(7)
    alphabet = " \t\r\f\v\u00a0\u3000\n\x85\u2028\u2003ab"
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(12)))
        assert collapse_spaces(text) == SPACES.sub(" ", text), repr(text)
    assert collapse_spaces("a \t\u00a0 b  c\u3000d") == "a b c d"
