"""Browser capture: pages whose content is made by scripts, rendered by the system's Chromium.

``census run --browser auto|always|never``: after the Scrapy crawl, the sites that need it
(``auto``: a live site whose home page has almost no text but has scripts, or whose
script-found links led to pages the static crawl found empty, or all the same frame;
``always``: every
live site) are opened in Debian's headless Chromium through Playwright (the system browser,
nothing downloaded), pinned exactly as screenshots are (``crawler/screenshots.py``: the
recorded addresses by ``--host-resolver-rules``, a closed proxy for everything else, the net
policy of ``--allow-net``).  Every response the browser receives goes into a WARC file of the
run, as Browsertrix does; the rendered DOM's text goes into ``pages``, marked ``browser`` in
``page_sources``; the links of the rendered DOM are
followed within the site.

Bounded: pages per site, seconds per page, a V8 heap limit per renderer.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import tempfile
import time
from collections import Counter, deque
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urlsplit, urlunsplit

from ..db import connect, reading, utcnow
from ..netpolicy import NetPolicy
from ..screenshots import (
    CHROMIUM_FLAGS,
    _closed_port,
    find_chromium,
    resolver_rules,
    site_hosts,
    target_url,
)
from .resolver import census_addresses
from .warc import WarcFiles

log = logging.getLogger(__name__)

MAX_PAGES = 30
PAGE_SECONDS = 15.0
HEAP_MB = 256
SETTLE_MS = 500
"""After the load event and the network's quiet, time for late scripts to draw."""
AUTO_TEXT = 200
"""A home page with less text than this and scripts needs a browser (``auto``)."""
AUTO_SHARE = 0.5
"""A site whose script-found pages are this often empty to the static crawl needs one too."""


@dataclass
class BrowserResult:
    sites: list[str] = field(default_factory=list)
    pages: int = 0
    records: int = 0
    seconds: float = 0.0
    skipped: str = ""
    failed: dict[str, str] = field(default_factory=dict)

    def message(self) -> str:
        if self.skipped:
            return f"browser: skipped, {self.skipped}"
        rate = self.pages / self.seconds * 60 if self.seconds else 0.0
        return (f"browser: {self.pages} pages of {len(self.sites)} sites, "
                f"{self.records} records ({rate:.0f} pages/min)")


def sites_needing_browser(db_path: str | Path, run_id: int, mode: str) -> list[tuple[str, str]]:
    """``(domain, start URL)`` of the live sites to open in the browser."""
    if mode == "never":
        return []
    with reading(db_path) as conn:
        sites = conn.execute(
            "SELECT domain, coalesce(final_url, url) FROM sites WHERE run_id = ? AND alive = 1 "
            "ORDER BY domain", [run_id]).fetchall()
        if mode == "always":
            return [(d, u) for d, u in sites]
        # judged on the Scrapy crawl's pages: the browser's own (a resumed run) are not
        thin = {d for (d,) in conn.execute(
            "SELECT p.domain FROM pages p WHERE p.run_id = ? AND p.depth = 0 AND "
            "p.http_status = 200 AND p.id NOT IN (SELECT page_id FROM page_sources "
            "WHERE source = 'browser') GROUP BY p.domain "
            "HAVING max(length(coalesce(p.text, ''))) < ?",
            [run_id, AUTO_TEXT])}
        scripted = {d for (d,) in conn.execute(
            "SELECT DISTINCT domain FROM requisites WHERE run_id = ? AND kind = 'script'",
            [run_id])}
    empty = empty_script_pages(db_path, run_id)
    return [(d, u) for d, u in sites if (d in thin and d in scripted) or d in empty]


def empty_script_pages(db_path: str | Path, run_id: int) -> dict[str, list[str]]:
    """Per site, the pages its scripts lead to (``links.how = 'js'``) whose content the
    static crawl could not see, when they are at least ``AUTO_SHARE`` of its script-found
    HTML or JSON pages (``auto``'s second trigger): pages with no text at all, and pages
    served with the very same body as another of them (one frame for every
    ``story.html?no=N``, filled by scripts the sandbox cannot run, data by ``fetch()``)."""
    with reading(db_path) as conn:
        found = conn.execute(
            "SELECT p.domain, p.url, p.sha256, coalesce(p.text, '') = '' FROM pages p "
            "JOIN (SELECT DISTINCT f.domain, l.to_url FROM links l "
            "      JOIN pages f ON f.id = l.page_id WHERE l.run_id = ? AND l.how = 'js') j "
            "ON j.domain = p.domain AND j.to_url = p.url "
            "WHERE p.run_id = ? AND p.http_status = 200 AND (p.content_type IN "
            "('text/html', 'application/xhtml+xml', 'application/json') "
            "OR p.content_type LIKE '%+json') AND p.id NOT IN "
            "(SELECT page_id FROM page_sources WHERE source = 'browser') ORDER BY p.id",
            [run_id, run_id]).fetchall()
    by_site: dict[str, list[tuple[str, str, bool]]] = {}
    for domain, url, sha256, textless in found:
        by_site.setdefault(domain, []).append((url, sha256, bool(textless)))
    out = {}
    for domain, pages in by_site.items():
        bodies = Counter(sha for _, sha, _ in pages)
        empty = [url for url, sha, textless in pages if textless or bodies[sha] > 1]
        if empty and len(empty) >= AUTO_SHARE * len(pages):
            out[domain] = empty
    return out


def _canonical(url: str, ports: dict[str, int]) -> str:
    """The URL as the census names it: without the lab's port."""
    parts = urlsplit(url)
    if parts.port and ports.get(parts.scheme) == parts.port:
        return urlunsplit((parts.scheme, parts.hostname or "", parts.path, parts.query, ""))
    return urldefrag(url)[0]


class _Capture:
    """Writes every response of one browser page to the WARC as it arrives."""

    def __init__(self, warc: WarcFiles, ports: dict[str, int], hosts: dict[str, str]) -> None:
        self.warc, self.ports, self.hosts = warc, ports, hosts
        self.records = 0
        self.locations: dict[str, Any] = {}

    def on_response(self, response: Any) -> None:
        try:
            body = response.body()
        except Exception:  # a redirect, or a response the page went away from
            body = b""
        request = response.request
        url = _canonical(response.url, self.ports)
        parts = urlsplit(url)
        try:
            headers = [(k, v) for k, v in response.headers_array()]
            request_headers = [(k, v) for k, v in request.headers_array()]
        except Exception:
            headers, request_headers = list(response.headers.items()), []
        headers = [(k, v) for k, v in headers if k.lower() != "content-encoding"]
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        location = self.warc.write_exchange(
            url, date=utcnow(), ip=self.hosts.get(parts.hostname or ""),
            request_line=f"{request.method} {target} HTTP/1.1",
            request_headers=[("Host", parts.netloc), *[
                (k, v) for k, v in request_headers if k.lower() != "host"]],
            status=response.status, headers=headers, body=body)
        self.records += 1
        self.locations[url] = (location, hashlib.sha256(body).hexdigest(), response.status,
                               response.headers.get("content-type", ""))


class _Replay:
    """A site captured again (the run was killed before its pages were stored): what the
    earlier attempt's browser wrote to the WARC is answered from there, not fetched again."""

    def __init__(self, captures: dict[str, list[tuple[Path, int, str]]],
                 ports: dict[str, int]) -> None:
        self.captures, self.ports = captures, ports
        self.replayed = 0

    def handle(self, route: Any) -> None:
        from .resume import read_record

        request = route.request
        found = self.captures.get(_canonical(request.url, self.ports))
        if found and request.method == "GET":
            # each capture answers one request; the last one answers any later (the first
            # attempt may have been cut before a page asked for it again)
            path, offset, _ = found[0] if len(found) == 1 else found.pop(0)
            read = read_record(path, offset, raw=True)
            if read is not None:
                status, headers, body, _, _ = read
                route.fulfill(status=status, body=body, headers={
                    k: v for k, v in headers if k.lower() not in _NOT_REPLAYED})
                self.replayed += 1
                return
        route.continue_()


_NOT_REPLAYED = {"content-length", "transfer-encoding", "connection", "content-encoding"}


def captured_sites(db_path: str | Path, run_id: int) -> dict[str, int]:
    """Sites the browser already captured in this run (an interrupted run being resumed),
    with their pages: a site's pages are stored together once it is done, so a site with
    any is complete."""
    with reading(db_path) as conn:
        return dict(conn.execute(
            "SELECT p.domain, count(*) FROM pages p JOIN page_sources s ON s.page_id = p.id "
            "WHERE p.run_id = ? AND s.source = 'browser' GROUP BY p.domain", [run_id]))


def browser_capture(db_path: str | Path, run_id: int, out_dir: str | Path,
                    allow_nets: Iterable[str] = (), mode: str = "auto",
                    http_port: int | None = None, https_port: int | None = None,
                    max_pages: int = MAX_PAGES) -> BrowserResult:
    """Render the sites that need it (``mode``) and store what the browser saw."""
    result = BrowserResult()
    sites = sites_needing_browser(db_path, run_id, mode)
    done = captured_sites(db_path, run_id)
    result.sites += [d for d, _ in sites if d in done]
    result.pages += sum(done[d] for d in result.sites)
    sites = [(d, u) for d, u in sites if d not in done]
    if not sites:
        return result
    empty = empty_script_pages(db_path, run_id)
    chromium = find_chromium()
    if chromium is None:
        result.skipped = "chromium is not installed (Debian: apt-get install chromium)"
        return result
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        result.skipped = "playwright is not installed (pip install playwright; no browser download)"
        return result
    policy = NetPolicy(allow_nets)
    ports = {k: v for k, v in (("http", http_port), ("https", https_port)) if v}
    addresses = census_addresses(str(db_path), run_id)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    from .resume import warc_captures

    # what an earlier attempt's browser wrote of a site it was cut in is not fetched again
    replay = _Replay(warc_captures(Path(out_dir) / "warc", run_id, browser=True).records, ports)
    warc = WarcFiles(Path(out_dir) / "warc", f"census-run{run_id:05d}-{stamp}-browser",
                     {"operator": "ccTLD Census browser capture", "browser": chromium})
    proxy = _closed_port()
    started = time.monotonic()
    try:
        with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profiles:
            for domain, url in sites:
                hosts, why = site_hosts(domain, addresses, policy)
                start = target_url(url or "", hosts, ports) if hosts else None
                if start is None:
                    result.failed[domain] = why or f"cannot open {url!r}"
                    continue
                args = [*CHROMIUM_FLAGS, f"--host-resolver-rules={resolver_rules(hosts)}",
                        f"--proxy-server=http://127.0.0.1:{proxy.getsockname()[1]}",
                        f"--proxy-bypass-list={';'.join(['<-loopback>', *sorted(hosts)])}",
                        f"--js-flags=--max-old-space-size={HEAP_MB}",
                        "--renderer-process-limit=2"]
                args = [a for a in args if a != "--headless"]
                browser = playwright.chromium.launch_persistent_context(
                    str(Path(profiles) / domain), executable_path=chromium, args=args,
                    headless=True, ignore_https_errors=True)
                # the pages the static crawl found empty are rendered too, after the home page
                extra = [t for u in empty.get(domain, []) if (t := target_url(u, hosts, ports))]
                try:
                    pages = _crawl_site(browser, domain, [start, *extra], hosts, ports, warc,
                                        max_pages, db_path, run_id, result, replay)
                finally:
                    browser.close()
                result.sites.append(domain)
                result.pages += pages
    finally:
        proxy.close()
        warc.close()
        result.seconds = time.monotonic() - started
    return result


def _crawl_site(browser: Any, domain: str, starts: list[str], hosts: dict[str, str],
                ports: dict[str, int], warc: WarcFiles, max_pages: int, db_path: str | Path,
                run_id: int, result: BrowserResult, replay: _Replay | None = None) -> int:
    capture = _Capture(warc, ports, hosts)
    page = browser.new_page()
    page.on("response", capture.on_response)
    if replay is not None and any(
            (urlsplit(url).hostname or "") in hosts for url in replay.captures):
        page.route("**/*", replay.handle)
    queue, seen, done = deque(dict.fromkeys(starts)), set(starts), 0
    rendered: list[tuple[Any, ...]] = []
    while queue and done < max_pages:
        url = queue.popleft()
        try:
            page.goto(url, wait_until="load", timeout=PAGE_SECONDS * 1000)
            # a page that never goes quiet is rendered as it is
            with contextlib.suppress(Exception):
                page.wait_for_load_state("networkidle", timeout=PAGE_SECONDS * 500)
            page.wait_for_timeout(SETTLE_MS)
            text = page.inner_text("body", timeout=2000)
            title = page.title()
            hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
        except Exception as exc:
            result.failed[_canonical(url, ports)] = str(exc).splitlines()[0][:300]
            continue
        done += 1
        canonical = _canonical(page.url, ports)
        location, sha256, status, ctype = capture.locations.get(
            canonical, (None, None, None, None))
        rendered.append((canonical, status, ctype, sha256, title, text, location, hrefs))
        for href in hrefs:
            href = urldefrag(href)[0]
            host = (urlsplit(href).hostname or "").rstrip(".")
            if host in hosts and href not in seen and href.startswith(("http:", "https:")):
                seen.add(href)
                queue.append(href)
    # all at once, so a run killed mid-site captures the site again when it is resumed
    with closing(connect(db_path)) as conn, conn:
        for canonical, status, ctype, sha256, title, text, location, hrefs in rendered:
            _store_page(conn, run_id, domain, canonical, status, ctype, sha256, title, text,
                        location, hrefs, ports)
    result.records += capture.records
    page.close()
    return done


def _store_page(conn: Any, run_id: int, domain: str, url: str, status: int | None,
                ctype: str | None, sha256: str | None, title: str, text: str, location: Any,
                hrefs: list[str], ports: dict[str, int]) -> None:
    cursor = conn.execute(
        "INSERT INTO pages (run_id, domain, url, http_status, content_type, sha256, title,"
        " text, depth, fetched_at, warc_file, warc_offset, warc_record_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [run_id, domain, url, status, (ctype or "").split(";")[0] or None, sha256,
         title or None, text.strip() or None, 0, utcnow(),
         location.file if location else None, location.offset if location else None,
         location.record_id if location else None])
    conn.execute("INSERT INTO page_sources (page_id, source) VALUES (?, 'browser')",
                 [cursor.lastrowid])
    links = []
    for href in dict.fromkeys(hrefs):
        target = _canonical(href, ports)
        host = (urlsplit(target).hostname or "").rstrip(".")
        if target.startswith(("http:", "https:")) and host:
            internal = int(host == domain or host.endswith("." + domain))
            links.append((run_id, cursor.lastrowid, target, host, internal, "browser"))
    conn.executemany(
        "INSERT INTO links (run_id, page_id, to_url, to_host, internal, how)"
        " VALUES (?, ?, ?, ?, ?, ?)", links)


__all__ = ["BrowserResult", "browser_capture", "empty_script_pages", "sites_needing_browser"]
