"""Screenshots of every live site's home page, by the system's headless Chromium.

An optional stage (``census run --screenshots``): nothing is downloaded at run time, and a
machine without ``chromium`` skips the stage with a message.  Chromium must reach only what
the crawl may reach, at the addresses the probe recorded:

- ``--host-resolver-rules`` maps each host of the site (the domain and its names below it)
  to its recorded address, if the net policy allows it, and every other name to NOTFOUND;
- ``--proxy-server`` points at a loopback port this process holds closed, with only the
  site's hosts bypassing it (``<-loopback>`` drops Chromium's implicit loopback bypass), so
  a URL with an IP literal, which no resolver rule can catch, fails instead of connecting.

The lab serves its sites on other ports: the URL then names the port (``http://kcna.kp:8080/``)
and the lab answers by the Host header without the port.  PNGs go to
``<out>/screenshots/run<id>/<domain>.png``; the domain is network data, so it must be a valid
DNS name before it becomes part of a path.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .crawl.resolver import census_addresses
from .db import connect, reading
from .names import normalize_name
from .netpolicy import NetPolicy

log = logging.getLogger(__name__)

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "/usr/bin/chromium")
WINDOW = (1280, 800)
PAGE_TIMEOUT_MS = 8000
PROCESS_TIMEOUT_S = 40
WORKERS = 2
"""Two Chromium processes at a time: one per core of the machines this runs on."""

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--mute-audio",
    "--ignore-certificate-errors",
)
"""``--ignore-certificate-errors``: census sites often have self-signed certificates; the
screenshot shows the site, not Chromium's warning (the certificate is in ``sites``)."""


@dataclass
class ScreenshotResult:
    taken: dict[str, str] = field(default_factory=dict)
    """domain -> PNG path relative to the output folder."""
    failed: dict[str, str] = field(default_factory=dict)
    """domain -> why there is no screenshot."""
    skipped: str = ""
    """Why the whole stage did nothing (no chromium), else empty."""

    def message(self) -> str:
        if self.skipped:
            return f"screenshots: skipped, {self.skipped}"
        text = f"screenshots: {len(self.taken)} of {len(self.taken) + len(self.failed)} sites"
        return text + (f" ({len(self.failed)} failed)" if self.failed else "")


def find_chromium() -> str | None:
    """The system's Chromium, or None."""
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def resolver_rules(hosts: dict[str, str]) -> str:
    """``--host-resolver-rules``: each host to its address, every other name to nowhere."""
    rules = [f"MAP {host} {address}" for host, address in sorted(hosts.items())]
    return ", ".join([*rules, "MAP * ~NOTFOUND"])


def site_hosts(
    domain: str, addresses: dict[str, list[str]], policy: NetPolicy
) -> tuple[dict[str, str], str]:
    """Hosts of ``domain`` with the first allowed recorded address; or {} and why not."""
    hosts: dict[str, str] = {}
    refused = ""
    for host, candidates in addresses.items():
        name = normalize_name(host)
        if name is None or not (name == domain or name.endswith("." + domain)):
            continue
        allowed = [a for a in candidates if policy.allowed(a)]
        if allowed:
            hosts[name] = allowed[0]
        elif name == domain or not refused:
            refused = policy.why_not(candidates[0])
    if domain not in hosts and f"www.{domain}" not in hosts:
        return {}, refused or f"{domain} has no A record in this census run"
    return hosts, ""


def target_url(url: str, hosts: dict[str, str], ports: dict[str, int]) -> str | None:
    """The URL Chromium opens: a host of the site, on the lab's port if one is given."""
    parts = urlsplit(url)
    host = normalize_name(parts.hostname or "")
    if parts.scheme not in ("http", "https") or host is None or host not in hosts:
        return None
    port = parts.port or ports.get(parts.scheme)
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))


def chromium_command(
    chromium: str, url: str, png: Path, hosts: dict[str, str], proxy_port: int, profile: str
) -> list[str]:
    width, height = WINDOW
    bypass = ";".join(["<-loopback>", *sorted(hosts)])
    return [
        chromium,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
        f"--host-resolver-rules={resolver_rules(hosts)}",
        f"--proxy-server=http://127.0.0.1:{proxy_port}",
        f"--proxy-bypass-list={bypass}",
        f"--timeout={PAGE_TIMEOUT_MS}",
        f"--screenshot={png}",
        url,
    ]


def _closed_port() -> socket.socket:
    """A loopback port bound but not listening: connecting to it is refused at once."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def _shoot(command: list[str], png: Path) -> str:
    """Run one Chromium; return an error, or '' when the PNG was written."""
    try:
        done = subprocess.run(
            command, capture_output=True, timeout=PROCESS_TIMEOUT_S, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        return f"chromium did not finish in {PROCESS_TIMEOUT_S} s"
    if not png.is_file() or png.stat().st_size == 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        return f"chromium wrote no screenshot (exit {done.returncode}) {tail[0]}".strip()
    return ""


def take_screenshots(
    db_path: str | Path,
    run_id: int,
    out_dir: str | Path,
    allow_nets: Iterable[str] = (),
    http_port: int | None = None,
    https_port: int | None = None,
    progress: Callable[[str, int, int | None], None] | None = None,
) -> ScreenshotResult:
    """Screenshot the home page of every live site of ``run_id``; set ``sites.screenshot``."""
    result = ScreenshotResult()
    chromium = find_chromium()
    if chromium is None:
        result.skipped = "chromium is not installed (Debian: apt-get install chromium)"
        log.warning("%s", result.skipped)
        return result
    policy = NetPolicy(allow_nets)
    ports = {k: v for k, v in (("http", http_port), ("https", https_port)) if v}
    addresses = census_addresses(str(db_path), run_id)
    with reading(db_path) as conn:
        sites = conn.execute(
            "SELECT domain, coalesce(final_url, url) FROM sites WHERE run_id = ? AND alive = 1 "
            "ORDER BY domain",
            [run_id],
        ).fetchall()
    folder = Path(out_dir) / "screenshots" / f"run{int(run_id)}"
    folder.mkdir(parents=True, exist_ok=True)
    jobs: list[tuple[str, list[str], Path]] = []
    proxy = _closed_port()
    with tempfile.TemporaryDirectory(prefix="census-chromium-") as profiles:
        for domain_text, url in sites:
            domain = normalize_name(domain_text or "")
            if domain is None or domain != domain_text:
                result.failed[str(domain_text)] = "not a valid DNS name"
                continue
            hosts, why = site_hosts(domain, addresses, policy)
            target = target_url(url or "", hosts, ports) if hosts else None
            if target is None:
                result.failed[domain] = why or f"cannot open {url!r} at a recorded address"
                continue
            png = folder / f"{domain}.png"
            png.unlink(missing_ok=True)
            profile = str(Path(profiles) / domain)
            port = proxy.getsockname()[1]
            command = chromium_command(chromium, target, png, hosts, port, profile)
            jobs.append((domain, command, png))
        with ThreadPoolExecutor(WORKERS) as pool:
            outcomes = pool.map(lambda job: _shoot(job[1], job[2]), jobs)
            for done, ((domain, _, png), error) in enumerate(zip(jobs, outcomes, strict=True)):
                if error:
                    result.failed[domain] = error
                else:
                    result.taken[domain] = png.relative_to(out_dir).as_posix()
                if progress:
                    progress("screenshots", done + 1, len(jobs))
    proxy.close()
    _store(db_path, run_id, result.taken)
    return result


def _store(db_path: str | Path, run_id: int, taken: dict[str, str]) -> None:
    with closing(connect(db_path)) as conn, conn:
        conn.executemany(
            "UPDATE sites SET screenshot = ? WHERE run_id = ? AND domain = ? AND alive = 1",
            [(path, run_id, domain) for domain, path in taken.items()],
        )
