"""The lab web server over real sockets on the world's loopback addresses."""

import http.client
import socket
import ssl
import time
import zlib

import pytest

from crawler.crawl.extract import extract
from crawler.lab.dnsserver import free_port
from crawler.lab.webserver import LabWeb
from crawler.lab.world import load_world


def _start(version: int):
    world = load_world("kp", version=version)
    addresses = [world.resolve(h, "A")[0] for h in ("kcna.kp", "rodong.rep.kp", "mfa.gov.kp")]
    web = LabWeb(world, free_port(addresses), free_port(addresses)).start()
    return world, web


@pytest.fixture(scope="module")
def lab():
    world, web = _start(1)
    yield world, web
    web.stop()


def get(lab, host, path="/", https=False, timeout=5.0, address=None):
    world, web = lab
    address = address or world.resolve(host, "A")[0]
    if https:
        context = ssl.create_default_context(cafile=str(web.cert_path))
        context.check_hostname = False  # we connect by address; the SANs hold the names
        conn = http.client.HTTPSConnection(address, web.https_port, timeout=timeout,
                                           context=context)
    else:
        conn = http.client.HTTPConnection(address, web.http_port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host, "User-Agent": "census-test"})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_virtual_hosts_share_nothing(lab):
    status, headers, body = get(lab, "naenara.com.kp", "/fr/")
    page = extract(body, "http://naenara.com.kp/fr/", headers)
    assert status == 200 and page.lang == "fr" and "Naenara" in page.title
    assert get(lab, "www.naenara.com.kp", "/ja/")[0] == 200
    assert get(lab, "naenara.com.kp", "/no/such/page.html")[0] == 404
    # a host that is not served at this address, and a host of no site
    assert get(lab, "kcna.kp", "/", address=lab[0].resolve("naenara.com.kp", "A")[0])[0] == 404
    assert get(lab, "friend.com.kp", "/", address=lab[0].resolve("kcna.kp", "A")[0])[0] == 404


def test_dead_site_refuses_connections(lab):
    with pytest.raises(ConnectionRefusedError):
        get(lab, "friend.com.kp", "/")


def test_bad_gateway(lab):
    assert get(lab, "ma.gov.kp")[0] == 502


def test_redirect_chain_across_hosts(lab):
    status, headers, _ = get(lab, "mfa.gov.kp", "/")
    assert (status, headers["location"]) == (301, "http://www.mfa.gov.kp/")
    status, headers, _ = get(lab, "www.mfa.gov.kp", "/")
    assert (status, headers["location"]) == (302, "/en/")
    assert get(lab, "www.mfa.gov.kp", "/en/")[0] == 200


def test_http_to_https_with_self_signed_certificate(lab):
    status, headers, _ = get(lab, "kcna.kp", "/kp/index.html")
    assert (status, headers["location"]) == (301, "https://kcna.kp/kp/index.html")
    status, headers, _ = get(lab, "kcna.kp", "/", https=True)
    assert (status, headers["location"]) == (302, "/kp/index.html")
    status, headers, body = get(lab, "kcna.kp", "/kp/index.html", https=True)
    page = extract(body, "https://kcna.kp/kp/index.html", headers)
    article = "https://kcna.kp/ko/article/AR0125885.kcmsf"
    assert (article, "js") in {(link.url, link.how) for link in page.links}
    status, headers, body = get(lab, "kcna.kp", "/ko/article/AR0125885.kcmsf", https=True)
    assert status == 200 and headers["content-type"].startswith("text/html")
    with pytest.raises(ssl.SSLCertVerificationError):
        conn = http.client.HTTPSConnection(lab[0].resolve("kcna.kp", "A")[0], lab[1].https_port,
                                           timeout=5, context=ssl.create_default_context())
        conn.request("GET", "/", headers={"Host": "kcna.kp"})


def test_robots_txt(lab):
    status, _, body = get(lab, "kass.org.kp", "/robots.txt")
    assert status == 200 and b"Disallow: /internal/" in body


def test_euc_kr_bytes(lab):
    status, headers, body = get(lab, "rodong.rep.kp", "/")
    assert (status, headers["content-type"]) == (200, "text/html; charset=euc-kr")
    assert "로동신문".encode("euc-kr") in body and "로동신문".encode() not in body
    assert extract(body, "http://rodong.rep.kp/", headers).title == "로동신문"


def test_kps_9566_site_is_undecodable(lab):
    status, headers, body = get(lab, "sdprk.org.kp", "/")
    page = extract(body, "http://sdprk.org.kp/", headers)
    assert status == 200 and "KPS-9566" in headers["content-type"] and page.text is None
    assert page.decode_error.startswith("undecodable charset KPS-9566")


def test_calendar_trap_never_ends(lab):
    _, headers, body = get(lab, "korfilm.com.kp", "/festival/calendar/9999/12/")
    urls = [link.url for link in extract(body, "http://korfilm.com.kp/", headers).links]
    assert "http://korfilm.com.kp/festival/calendar/9999/11/" in urls


def test_link_to_a_name_in_no_zone(lab):
    _, headers, body = get(lab, "pyongyangtimes.com.kp")
    hosts = {link.host for link in extract(body, "http://pyongyangtimes.com.kp/", headers).links}
    assert "www.kftrade.com.kp" in hosts


def test_hang_times_out_client_side(lab):
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        get(lab, "nta.gov.kp", timeout=0.5)
    assert time.monotonic() - started < 3


def test_reset_mid_body(lab):
    with pytest.raises((http.client.IncompleteRead, ConnectionError)):
        get(lab, "star.net.kp")


def test_bad_request_does_not_kill_the_server(lab):
    world, web = lab
    with socket.create_connection((world.resolve("kcna.kp", "A")[0], web.http_port), 5) as sock:
        sock.sendall(b"\x16\x03\x01garbage\r\n\r\n")
        sock.recv(1000)
    assert get(lab, "vok.rep.kp", "/ru/")[0] == 200


def test_fault_gzip_bomb_is_small_on_the_wire(lab):
    status, headers, body = get(lab, "kcna.kp", "/_fault/gzip-bomb")
    assert status == 200 and headers["content-encoding"] == "gzip" and len(body) < 2_000_000
    inflated = zlib.decompressobj(31).decompress(body, 10_000_000)
    assert len(inflated) == 10_000_000 and not inflated.strip(b"\0")


def test_fault_redirects(lab):
    assert get(lab, "kcna.kp", "/_fault/loop")[1]["location"] == "/_fault/loop2"
    assert get(lab, "kcna.kp", "/_fault/loop2")[1]["location"] == "/_fault/loop"
    assert get(lab, "kcna.kp", "/_fault/to-private")[1]["location"] == "http://10.0.0.1/"


def test_fault_big_page_announces_50_mb(lab):
    world, web = lab
    conn = http.client.HTTPConnection(world.resolve("kcna.kp", "A")[0], web.http_port, timeout=5)
    conn.request("GET", "/_fault/big", headers={"Host": "kcna.kp"})
    response = conn.getresponse()
    assert int(response.getheader("Content-Length")) >= 50 * 2**20 - 10_000
    assert response.read(1000).startswith(b"<html>")
    conn.close()


def test_version_2_differences():
    world, web = _start(2)
    try:
        lab2 = (world, web)
        with pytest.raises(ConnectionRefusedError):  # its address serves nothing any more
            get(lab2, "koredufund.org.kp")
        assert get(lab2, "ma.gov.kp")[0] == 200
        assert "11월 전원회의".encode() in get(lab2, "youth.rep.kp")[2]
        assert get(lab2, "vok.rep.kp", "/es/")[0] == 200
    finally:
        web.stop()
