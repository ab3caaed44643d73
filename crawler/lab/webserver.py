"""The lab's web servers: every site of a world, on the loopback addresses its names resolve to.

``LabWeb(world, http_port, https_port)`` binds one threaded stdlib HTTP server per
(address, port) that a site host resolves to in the world, and answers by virtual host (the
Host header, port stripped).  Each site is a folder ``sites/<host>/`` of content files plus a
``site.toml`` of behaviours (see ``crawler/data/worlds/kp/sites/README.md``): status, delay,
hang, reset mid-body, https with a self-signed certificate made at start, redirect rules,
the charset to serve, a calendar trap.  URL paths are looked up in an index built at start:
a request never becomes a file path.

Faults for the crawler's defences live under ``/_fault/`` on every address and host when
``faults=True``; they are made in ``crawler/lab/faults.py`` (see ``FAULTS``), and nothing in
the world links to them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import logging
import socket
import ssl
import struct
import tempfile
import threading
import time
import tomllib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

from .families import Family, endless_page
from .faults import FAULTS, iter_faults, malformed_html, serve_fault
from .world import LabError

log = logging.getLogger(__name__)

TEXT_TYPES = {".html": "text/html", ".htm": "text/html", ".kcmsf": "text/html",
              ".txt": "text/plain", ".css": "text/css", ".js": "application/javascript",
              ".xml": "application/xml"}
BINARY_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".gif": "image/gif",
                ".ico": "image/x-icon", ".pdf": "application/pdf", ".woff": "font/woff",
                ".json": "application/json"}
SERVER_NAME = "Apache/2.2.15 (Red Hat)"  # what .kp hosts announced in 2016


@dataclass
class Redirect:
    source: str  # exact path, or a prefix ending with "*"
    to: str  # URL template: {host} {path} {rest}
    status: int = 301
    scheme: str | None = None  # only on requests of this scheme
    host: str | None = None  # only on requests for this host (a site's alias or itself)

    def match(self, scheme: str, host: str, path: str) -> bool:
        if (self.scheme and self.scheme != scheme) or (self.host and self.host != host):
            return False
        if self.source.endswith("*"):
            return path.startswith(self.source[:-1])
        return path == self.source


@dataclass
class Site:
    """One site folder, read once at start."""

    host: str
    purpose: str = "unknown"
    aliases: list[str] = field(default_factory=list)
    status: int | None = None
    delay: float = 0.0
    hang: bool = False
    hang_paths: list[str] = field(default_factory=list)
    reset_mid_body: bool = False
    https: bool = False
    http: bool = True
    charset: str = "utf-8"
    body_encoding: str | None = None
    header_charset: bool = True
    calendar: str | None = None
    family: Family | None = None
    endless: str | None = None
    redirects: list[Redirect] = field(default_factory=list)
    queries: dict[str, str] = field(default_factory=dict)
    """``path?query`` -> a content file, for pages a site serves by query (form GET)."""
    files: dict[str, Path] = field(default_factory=dict)

    @classmethod
    def load(cls, host: str, files: dict[str, Path]) -> Site:
        """The site made of ``files`` (path in the site -> file), as :meth:`.World.site_files`
        gives them."""
        config: dict[str, Any] = {}
        if "site.toml" in files:
            config = tomllib.loads(files["site.toml"].read_text("utf-8"))
        redirects = [Redirect(r["from"], r["to"], int(r.get("status", 301)), r.get("scheme"),
                              r.get("host")) for r in config.get("redirect", [])]
        site = cls(host=host, purpose=config.get("purpose", "unknown"),
                   aliases=list(config.get("aliases", [])), status=config.get("status"),
                   delay=float(config.get("delay", 0.0)), hang=bool(config.get("hang", False)),
                   hang_paths=list(config.get("hang_paths", [])),
                   reset_mid_body=bool(config.get("reset_mid_body", False)),
                   https=bool(config.get("https", False)), http=bool(config.get("http", True)),
                   charset=config.get("charset", "utf-8"),
                   body_encoding=config.get("body_encoding"),
                   header_charset=bool(config.get("header_charset", True)),
                   calendar=config.get("calendar"), redirects=redirects,
                   endless=config.get("endless"), queries=dict(config.get("query", {})))
        if "family" in config:
            f = config["family"]
            site.family = Family(f["prefix"], int(f["count"]), int(f.get("per_index", 10)))
        for rel, path in sorted(files.items(), key=lambda item: item[0].split("/")):
            if rel != "site.toml":
                site.files["/" + rel] = path
                if path.name in ("index.html", "index.htm"):
                    folder = rel[: -len(path.name)]
                    site.files.setdefault("/" + folder, path)
        return site

    def encode(self, text: str) -> bytes:
        """Body bytes in the served charset; KPS 9566 has no codec, so such a site says which
        stand-in encoding its bytes really use (``body_encoding``)."""
        return text.encode(self.body_encoding or self.charset)


def make_certificate(names: list[str], addresses: list[str], folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for the lab's https sites, as real .kp sites used."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else "lab"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ccTLD Census lab")])
    san: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    san += [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "lab-cert.pem", folder / "lab-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], lab: LabWeb, scheme: str,
                 context: ssl.SSLContext | None = None) -> None:
        self.lab, self.scheme, self.context = lab, scheme, context
        super().__init__(address, _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs in the request's thread so a silent client stalls only itself.
        if self.context is not None:
            request.settimeout(10)
            try:
                request = self.context.wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError):
                return
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("lab web: error serving %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = SERVER_NAME
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("lab web %s: " + format, self.address_string(), *args)

    def send_response(self, code: int, message: str | None = None) -> None:
        self.answered = time.monotonic()
        super().send_response(code, message)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _serve(self, head: bool) -> None:
        try:
            self.close_connection = True
            self.lab.requests.append((self.server.scheme, self.headers.get("Host", ""), self.path))
            started = self.answered = time.monotonic()
            try:
                self.lab.respond(self, head)
            finally:
                if self.answered == started:  # no answer (a fault): until the handler ends
                    self.answered = time.monotonic()
                self.lab.timed.append((started, self.answered, self.server.scheme,
                                       self.headers.get("Host", ""), self.path))
        except (ConnectionError, TimeoutError, ssl.SSLError, OSError):
            self.close_connection = True

    @property
    def lab(self) -> LabWeb:
        return self.server.lab

    def send(self, status: int, body: bytes, ctype: str = "text/html; charset=utf-8",
             head: bool = False, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def send_half_then_reset(self, body: bytes, ctype: str) -> None:
        """Promise the whole body, send half, then abort with a RST (SO_LINGER 0)."""
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        sock = self.connection
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        with contextlib.suppress(OSError):
            raw = sock.unwrap() if isinstance(sock, ssl.SSLSocket) else sock
            raw.close()


class LabWeb:
    """The web side of a lab world; ``with LabWeb(world, 8080, 8443) as web: ...``."""

    def __init__(self, world: Any, http_port: int, https_port: int | None = None,
                 faults: bool = True) -> None:
        self.world, self.http_port, self.https_port, self.faults = (
            world, http_port, https_port, faults)
        self.sites: dict[str, Site] = {}
        self.addresses: dict[str, set[str]] = {}  # address -> hosts served there
        self.cert_path: Path | None = None
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.requests: list[tuple[str, str, str]] = []
        """The web log: ``(scheme, Host header, path)`` of every request, in order."""
        self.timed: list[tuple[float, float, str, str, str]] = []
        """The web log with times: ``(start, end, scheme, Host, path)``, ``time.monotonic``
        when the request was read and when its answer began.  A client that waits for one
        answer before its next request never shows two intervals of a host overlapping."""

    # ------------------------------------------------------------ lifecycle

    def _load(self) -> None:
        for host in self.world.site_hosts():
            files = self.world.site_files(host)
            if files is None:
                continue
            site = Site.load(host, files)
            for name in [host, *site.aliases]:
                addrs = self.world.resolve(name, "A")
                if not addrs:
                    log.info("lab web: %s has a site but no address in the world", name)
                self.sites[name] = site
                for addr in addrs:
                    self.addresses.setdefault(addr, set()).add(name)

    def start(self) -> Self:
        self._stop.clear()
        self._load()
        context = None
        https_names = sorted(n for n, s in self.sites.items() if s.https)
        https_addrs = sorted({a for a, hosts in self.addresses.items()
                              if any(self.sites[h].https for h in hosts)})
        if self.https_port and https_names:
            self._tmp = tempfile.TemporaryDirectory(prefix="census-lab-tls-")
            cert, key = make_certificate(https_names, https_addrs, Path(self._tmp.name))
            self.cert_path = cert
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
        try:
            for addr in sorted(self.addresses):
                if self.http_port:
                    self._bind(addr, self.http_port, "http", None)
                if context is not None and addr in https_addrs:
                    self._bind(addr, self.https_port, "https", context)  # type: ignore[arg-type]
        except OSError:
            self.stop()
            raise
        log.info("lab web: %d sites on %d addresses", len(self.sites), len(self.addresses))
        return self

    def _bind(self, addr: str, port: int, scheme: str, context: ssl.SSLContext | None) -> None:
        try:
            server = _Server((addr, port), self, scheme, context)
        except OSError as exc:
            self.stop()
            raise LabError(f"cannot serve {scheme} on {addr}:{port}: {exc}") from None
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                  name=f"labweb-{scheme}-{addr}", daemon=True)
        thread.start()
        self._servers.append(server)
        self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()  # releases hanging and delayed handlers
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=2)
        self._servers.clear()
        self._threads.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ answering

    def respond(self, req: _Handler, head: bool) -> None:
        scheme = req.server.scheme
        local = req.server.server_address[0]
        host = (req.headers.get("Host") or "").strip().lower()
        host = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        host = host.rstrip(".")
        path = urlsplit(req.path).path or "/"
        if self.faults and path.startswith("/_fault/"):
            serve_fault(req, path, head, self._stop)
            return
        site = self.sites.get(host)
        if site is None or host not in self.addresses.get(local, ()):
            req.send(404, b"<html><body><h1>Not Found</h1><p>No such site.</p></body></html>",
                     head=head)
            return
        if (scheme == "http" and not site.http) or (scheme == "https" and not site.https):
            req.close_connection = True
            return
        if site.hang or path in site.hang_paths:
            self._stop.wait()
            return
        if site.delay:
            self._stop.wait(site.delay)
        if site.status:
            body = f"<html><body><h1>{site.status}</h1><p>Bad Gateway</p></body></html>"
            req.send(int(site.status), body.encode(), head=head)
            return
        for rule in site.redirects:
            if rule.match(scheme, host, path):
                rest = path[len(rule.source) - 1:] if rule.source.endswith("*") else ""
                location = rule.to.format(host=host, path=path, rest=rest)
                req.send(rule.status, b"", extra={"Location": location}, head=head)
                return
        if site.calendar and path.startswith(site.calendar):
            self._send_text(req, site, calendar_page(site.calendar, path), ".html", head)
            return
        if site.endless and path.startswith(site.endless):
            self._send_text(req, site, endless_page(site.endless, path), ".html", head)
            return
        if site.family and path.startswith(site.family.prefix):
            page = site.family.render(path)
            if page is not None:
                self._send_text(req, site, page, ".html", head)
                return
        query = urlsplit(req.path).query
        file = site.files.get(path)
        if query and f"{path}?{query}" in site.queries:
            file = site.files.get("/" + site.queries[f"{path}?{query}"])
        if file is None:
            req.send(404, b"<html><body><h1>Not Found</h1></body></html>", head=head)
            return
        suffix = file.suffix.lower()
        if suffix in TEXT_TYPES:
            self._send_text(req, site, file.read_text("utf-8"), suffix, head)
        else:
            req.send(200, file.read_bytes(), BINARY_TYPES.get(suffix, "application/octet-stream"),
                     head=head)

    def _send_text(self, req: _Handler, site: Site, text: str, suffix: str, head: bool) -> None:
        body = site.encode(text)
        ctype = TEXT_TYPES[suffix]
        if site.header_charset:
            ctype += f"; charset={site.charset}"
        if site.reset_mid_body and not head:
            req.send_half_then_reset(body, ctype)
            return
        req.send(200, body, ctype, head=head)


def calendar_page(prefix: str, path: str) -> str:
    """A month view whose previous/next links never end: the classic crawler trap."""
    rest = path[len(prefix):].strip("/").split("/")
    try:
        year, month = int(rest[0]), int(rest[1])
        if not (1 <= month <= 12 and 1 <= year <= 9999):
            raise ValueError
    except (ValueError, IndexError):
        year, month = 2016, 9
    prev = (year, month - 1) if month > 1 else (year - 1, 12)
    nxt = (year, month + 1) if month < 12 else (year + 1, 1)
    days = "".join(f"<td><a href='{prefix}{year}/{month:02d}/{d:02d}/'>{d}</a></td>"
                   for d in range(1, 29))
    return (f"<html lang='ko'><head><meta charset='utf-8'><title>행사일정 {year}년 {month}월"
            f"</title></head><body><h1>행사일정 {year}년 {month}월</h1>"
            f"<p><a href='{prefix}{prev[0]}/{prev[1]:02d}/'>이전 달</a> "
            f"<a href='{prefix}{nxt[0]}/{nxt[1]:02d}/'>다음 달</a></p>"
            f"<table><tr>{days}</tr></table></body></html>")


__all__ = ["FAULTS", "LabWeb", "Site", "calendar_page", "iter_faults", "make_certificate",
           "malformed_html"]
