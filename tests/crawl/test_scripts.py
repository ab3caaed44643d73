"""The script sandbox: where a page's own scripts and handlers navigate, within bounds."""

from __future__ import annotations

import time

import lxml.html

from crawler.crawl.scripts import PAGE_SECONDS, form_navigations, navigations, needs_engine

PAGE = "http://minju.com.kp/index.html"
COMMON = """
function pad(n, w) { var s = String(n); while (s.length < w) s = "0" + s; return s; }
function goArticle(o) {
  window.location.href = "/" + o.lang + "/article/" + pad(o.id, 6) + ".html";
}
"""


def urls(html: str, external: dict[str, str | None] | None = None) -> list[tuple[str, str]]:
    return [(n.url, n.text) for n in navigations(html, PAGE, external)]


def test_handlers_call_functions_of_the_page_with_their_own_arguments() -> None:
    html = """<html><head><script>
    function fnView(seq, sect) { document.location.href = "/ko/" + (sect || "pol") + "/" + seq; }
    </script></head><body>
    <a href="#" onclick="fnView(101, 'eco'); return false;">one</a>
    <a href="javascript:fnView('102');">two</a>
    <span onclick="fnView(this.getAttribute('data-seq'), 'cul', event)" data-seq="103">three</span>
    <a onmouseover="fnView(&quot;104&quot;)">four</a>
    </body></html>"""
    assert urls(html) == [("/ko/eco/101", "one"), ("/ko/pol/102", "two"),
                          ("/ko/cul/103", "three"), ("/ko/pol/104", "four")]


def test_functions_of_a_same_site_script_are_called_too() -> None:
    html = """<html><head><script src="/js/common.js"></script></head><body>
    <a onclick="goArticle({id: 201, lang: 'en'})">English</a></body></html>"""
    assert urls(html, {"http://minju.com.kp/js/common.js": COMMON}) == [
        ("/en/article/000201.html", "English")]
    assert urls(html) == []  # without the script the function is not defined


def test_select_menus_forms_and_written_menus() -> None:
    html = """<html><body>
    <script>document.write("<a href='/section/world.html'>World</a>");</script>
    <select onchange="location.assign('/menu/' + this.options[this.selectedIndex].value)">
      <option value="a">A</option><option value="b">B</option></select>
    <form name="f" action="/list.html"><input type="hidden" name="page" value="1"></form>
    <a href="#" onclick="document.f.page.value = 2; document.f.submit()">next</a>
    <a onclick="window.open('/popup/' + this.id + '.html')" id="p9">popup</a>
    </body></html>"""
    assert urls(html) == [("/menu/a", "A"), ("/menu/b", "B"), ("/list.html?page=2", "next"),
                          ("/popup/p9.html", "popup"), ("/section/world.html", "World")]


def test_plain_get_forms_are_enumerated_but_search_boxes_are_not() -> None:
    root = lxml.html.fromstring("""<div>
    <form action="/archive/view.html"><select name="year"><option>2015</option>
      <option>2016</option></select><input type="submit"></form>
    <form action="/search"><input name="q"><input type="submit"></form>
    <form action="/post" method="post"><select name="x"><option>1</option></select></form>
    </div>""")
    assert [n.url for n in form_navigations(root, PAGE)] == [
        "/archive/view.html?year=2015", "/archive/view.html?year=2016"]


def test_hostile_scripts_cost_their_bounds_and_nothing_else() -> None:
    html = """<html><body>
    <a onclick="while (1) {}">loop</a>
    <a onclick="var a = []; while (1) a.push(new Array(1e6).join('x'))">heap</a>
    <a onclick="function f() { return f() + 1 } f()">recursion</a>
    <a onclick="while (1) location.href = '/again'">navigation loop</a>
    <a onclick="location.href = '/fine.html'">fine</a>
    </body></html>"""
    started = time.thread_time()
    found = urls(html)
    assert time.thread_time() - started < PAGE_SECONDS + 0.5
    assert ("/again", "navigation loop") in found
    assert len(found) <= 2001
    # a hostile script at top level does not stop the page's handlers
    top = "<script>while (1) {}</script><a onclick=\"location.href='/x'\">x</a>"
    assert urls(top) == [("/x", "x")]


def test_pages_without_scripts_skip_the_engine() -> None:
    assert not needs_engine(b"<html><body><a href='/p001.html'>one</a></body></html>")
    assert needs_engine(b"<a href='#' onClick='go(1)'>")
    assert needs_engine(b"<SCRIPT>var a;</SCRIPT>")
