"""What a page needs to render: images, stylesheets, scripts, fonts, and what CSS imports."""

from __future__ import annotations

from crawler.crawl.requisites import css_references, kind_of, page_requisites


def test_a_pages_requisites_in_document_order() -> None:
    html = """<html><head><link rel="stylesheet" href="/css/site.css">
    <link rel="shortcut icon" href="/favicon.ico"><script src="js/menu.js"></script>
    <link rel="preload" href="/fonts/a.woff2" as="font">
    <style>@import "print.css"; .b { background: url('/img/b.png') }</style></head>
    <body background="/img/paper.gif"><img src="/img/logo.png" srcset="/img/logo2x.png 2x">
    <div style="background-image: url(/img/c.jpg)"></div>
    <img src="data:image/png;base64,AAAA"><a href="/next.html">next</a></body></html>"""
    assert page_requisites(html, "http://x.kp/news/") == [
        ("http://x.kp/css/site.css", "stylesheet"), ("http://x.kp/favicon.ico", "image"),
        ("http://x.kp/news/js/menu.js", "script"), ("http://x.kp/fonts/a.woff2", "font"),
        ("http://x.kp/img/paper.gif", "image"), ("http://x.kp/img/logo.png", "image"),
        ("http://x.kp/img/logo2x.png", "image"), ("http://x.kp/news/print.css", "stylesheet"),
        ("http://x.kp/img/b.png", "image"), ("http://x.kp/img/c.jpg", "image")]


def test_stylesheets_lead_to_imports_fonts_and_images() -> None:
    css = """@import url("fonts.css"); @font-face { src: url(/f/x.woff) format("woff") }
    body { background: url("../img/bg.png") }"""
    assert css_references(css, "http://x.kp/css/site.css") == [
        ("http://x.kp/css/fonts.css", "stylesheet"), ("http://x.kp/f/x.woff", "font"),
        ("http://x.kp/img/bg.png", "image")]
    assert kind_of("http://x.kp/a.JS") == "script"


def test_a_style_attribute_is_found_in_any_case_the_regex_takes() -> None:
    """The scan looks for the word before running its costly regex; re.I also reads the long
    s (U+017F) as an s, and so must the look."""
    for attr in ("style", "STYLE", "\u017ftyle"):
        html = f'<div {attr}="background: url(/bg.png)">x</div>'
        assert page_requisites(html, "http://a.kp/") == [("http://a.kp/bg.png", "image")], attr
    assert page_requisites('<div class="stylish">x</div>', "http://a.kp/") == []
