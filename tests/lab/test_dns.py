"""The lab's DNS, over real sockets, as a prober sees it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.xfr
import dns.zone
import pytest

from crawler.lab import Lab, LabDNS, LabError, free_port, load_world

NS1, NS2, REG1, REG2 = "127.45.176.15", "127.45.176.16", "127.45.176.8", "127.45.176.9"
LAME, TRUNCATING, HALFWAY = "127.45.176.17", "127.45.176.18", "127.45.176.19"
SERVFAIL, GARBAGE, LOSSY = "127.45.179.1", "127.45.179.2", "127.45.179.3"
REPO = Path(__file__).resolve().parents[2]


def ask(
    lab: LabDNS, address: str, name: str, rdtype: str = "A", timeout: float = 2, **kw
) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, **kw)
    return dns.query.udp(query, address, port=lab.port, timeout=timeout)


def transfer(lab: LabDNS, address: str, zone: str) -> dns.zone.Zone:
    return dns.zone.from_xfr(dns.query.xfr(address, zone, port=lab.port, timeout=3))


def test_soa_of_kp(lab_dns):
    response = ask(lab_dns, NS1, "kp", "SOA")
    assert response.rcode() == dns.rcode.NOERROR
    assert response.flags & dns.flags.AA
    soa = response.answer[0]
    assert soa.ttl == 432000 and soa[0].serial == 2013083001


def test_ns_of_kp_includes_ns3_without_glue(lab_dns):
    response = ask(lab_dns, NS2, "kp", "NS")
    names = {rdata.target.to_text() for rdata in response.answer[0]}
    assert names == {"ns1.kptc.kp.", "ns2.kptc.kp.", "ns3.kptc.kp."}
    glued = {rrset.name.to_text() for rrset in response.additional}
    assert glued == {"ns1.kptc.kp.", "ns2.kptc.kp."}


def test_referral_to_registrant_servers_has_glue(lab_dns):
    response = ask(lab_dns, NS1, "www.airkoryo.com.kp")
    assert not response.flags & dns.flags.AA
    assert response.answer == []
    assert response.authority[0].name.to_text() == "airkoryo.com.kp."
    glue = {rdata.address for rrset in response.additional for rdata in rrset}
    assert glue == {REG1, REG2}


def test_referral_for_com_kp_from_a_kp_only_server(lab_world):
    world = lab_world.with_server(NS1, zones=("kp",))
    with LabDNS(world, free_port(world.addresses())) as lab:
        response = ask(lab, NS1, "friend.com.kp")
    assert not response.flags & dns.flags.AA
    assert response.authority[0].name.to_text() == "com.kp."
    glue = {rdata.address for rrset in response.additional for rdata in rrset}
    assert glue == {NS1, NS2}


def test_registrant_server_answers_its_zone(lab_dns):
    response = ask(lab_dns, REG1, "www.airkoryo.com.kp")
    assert response.flags & dns.flags.AA
    assert [rrset.rdtype for rrset in response.answer] == [dns.rdatatype.CNAME, dns.rdatatype.A]


def test_axfr_refused_by_ns1(lab_dns):
    with pytest.raises(dns.xfr.TransferError) as refused:
        transfer(lab_dns, NS1, "kp")
    assert refused.value.rcode == dns.rcode.REFUSED


@pytest.mark.parametrize("zone", ["kp", "com.kp"])
def test_axfr_from_ns2(lab_dns, zone):
    got = transfer(lab_dns, NS2, zone)
    names = {name.to_text() for name in got.nodes}
    if zone == "kp":
        assert got.get_rdataset("@", "SOA")[0].serial == 2013083001
        assert {"com", "rep", "kcna", "ns1.kptc"} <= names
    else:
        assert {"airkoryo", "friend", "pyongyangtimes", "www.knic"} <= names


def test_axfr_over_udp_is_refused(lab_dns):
    assert ask(lab_dns, NS2, "kp", "AXFR").rcode() == dns.rcode.REFUSED


def test_unknown_zone_is_refused(lab_dns):
    assert ask(lab_dns, NS1, "example.com").rcode() == dns.rcode.REFUSED
    assert ask(lab_dns, REG1, "friend.com.kp").rcode() == dns.rcode.REFUSED


def test_nxdomain_and_nodata(lab_dns):
    nx = ask(lab_dns, NS1, "nosuchname.com.kp")
    assert nx.rcode() == dns.rcode.NXDOMAIN and nx.flags & dns.flags.AA
    assert nx.authority[0].rdtype == dns.rdatatype.SOA
    nodata = ask(lab_dns, NS1, "friend.com.kp", "MX")
    assert nodata.rcode() == dns.rcode.NOERROR and nodata.answer == []
    assert nodata.authority[0].rdtype == dns.rdatatype.SOA
    # kptc.kp exists only as the parent of ns1.kptc.kp: an empty non-terminal, NODATA.
    assert ask(lab_dns, NS1, "kptc.kp").rcode() == dns.rcode.NOERROR


def test_wildcard_zone_answers_every_label(lab_dns):
    for label in ("anything", "zz-random-4711", "a.b.c"):
        response = ask(lab_dns, NS2, f"{label}.tra.kp")
        assert response.rcode() == dns.rcode.NOERROR
        assert response.answer[0].name.to_text() == f"{label}.tra.kp."
        assert response.answer[0][0].address == "127.45.177.50"


def test_wildcard_next_to_real_names(lab_dns):
    synthesized = ask(lab_dns, REG2, "nosuch.naenara.com.kp")
    assert synthesized.answer[0][0].address == "127.45.176.83"
    real = ask(lab_dns, REG2, "mail.naenara.com.kp")
    assert real.answer[0][0].address == "127.45.177.36"
    no_txt = ask(lab_dns, REG2, "nosuch.naenara.com.kp", "TXT")
    assert no_txt.rcode() == dns.rcode.NOERROR and no_txt.answer == []


def test_resolver_answers_www_kcna(lab_dns):
    address, port = lab_dns.resolver
    response = dns.query.udp(dns.message.make_query("www.kcna.kp", "A"), address, port=port)
    assert response.flags & dns.flags.RA and not response.flags & dns.flags.AA
    assert response.answer[0][0].address == "127.45.176.71"


def test_resolver_follows_cnames_and_says_nxdomain_outside(lab_dns):
    address, port = lab_dns.resolver
    cname = dns.query.udp(dns.message.make_query("www.rodong.rep.kp", "A"), address, port=port)
    assert cname.answer[-1][0].address == "127.45.176.67"
    outside = dns.query.udp(dns.message.make_query("example.com", "A"), address, port=port)
    assert outside.rcode() == dns.rcode.NXDOMAIN


def test_resolver_ptr_reveals_names_missing_from_every_zone(lab_dns, lab_world):
    address, port = lab_dns.resolver
    response = dns.query.udp(
        dns.message.make_query("110.176.45.127.in-addr.arpa", "PTR"), address, port=port
    )
    assert response.answer[0][0].target.to_text() == "www.kut.edu.kp."
    assert lab_world.resolve("www.kut.edu.kp", "A") == []
    assert lab_world.resolve("20.177.45.127.in-addr.arpa", "PTR") == ["gw.chosonexpo.com.kp."]


def test_truncation_over_udp_full_answer_over_tcp(lab_dns):
    query = dns.message.make_query("star.net.kp", "TXT")
    small = dns.query.udp(query, NS1, port=lab_dns.port, timeout=2)
    assert small.flags & dns.flags.TC and small.answer == []
    edns = dns.message.make_query("star.net.kp", "TXT", use_edns=0, payload=1232)
    assert dns.query.udp(edns, NS1, port=lab_dns.port, timeout=2).flags & dns.flags.TC
    full = dns.query.tcp(query, NS1, port=lab_dns.port, timeout=2)
    assert not full.flags & dns.flags.TC and len(full.answer[0]) == 20


def test_edns_is_answered_with_opt(lab_dns):
    response = ask(lab_dns, NS1, "kp", "SOA", use_edns=0, payload=4096)
    assert response.edns == 0
    big = ask(lab_dns, NS1, "star.net.kp", "TXT", use_edns=0, payload=4096)
    assert not big.flags & dns.flags.TC and len(big.answer[0]) == 20


def test_garbage_packet_does_not_kill_the_server(lab_dns):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        sock.sendto(b"\x12\x34" + b"\x01\x00" + b"\xff" * 30, (NS1, lab_dns.port))
        reply, _ = sock.recvfrom(512)
        sock.sendto(b"\x00", (NS1, lab_dns.port))
    assert reply[:2] == b"\x12\x34" and reply[3] & 0x0F == dns.rcode.FORMERR
    with socket.create_connection((NS1, lab_dns.port), timeout=2) as tcp:
        tcp.sendall(b"\x00\x05hello")
    assert ask(lab_dns, NS1, "kp", "SOA").rcode() == dns.rcode.NOERROR


def test_lame_and_servfail_servers(lab_dns):
    assert ask(lab_dns, LAME, "aca.kp", "SOA").rcode() == dns.rcode.REFUSED
    assert ask(lab_dns, SERVFAIL, "kp", "SOA").rcode() == dns.rcode.SERVFAIL


def test_truncating_server_forces_tcp(lab_dns):
    assert ask(lab_dns, TRUNCATING, "sca.kp", "SOA").flags & dns.flags.TC
    tcp = dns.query.tcp(dns.message.make_query("sca.kp", "SOA"), TRUNCATING, port=lab_dns.port)
    assert tcp.answer[0][0].serial == 2013083001


@pytest.mark.parametrize("address,zone", [(HALFWAY, "law.kp"), (GARBAGE, "com.kp")])
def test_broken_transfers_fail(lab_dns, address, zone):
    with pytest.raises((EOFError, dns.exception.DNSException, ConnectionError)):
        transfer(lab_dns, address, zone)
    assert ask(lab_dns, address, zone, "SOA").rcode() == dns.rcode.NOERROR


def test_loss_drops_some_queries(lab_dns):
    answered = 0
    for i in range(20):
        try:
            ask(lab_dns, LOSSY, f"n{i}.kp", timeout=0.2)
            answered += 1
        except dns.exception.Timeout:
            pass
    assert 0 < answered < 20


def test_version_2_differs_as_stated(lab_dns_v2, lab_world, lab_world_v2):
    assert ask(lab_dns_v2, NS1, "kp", "SOA").answer[0][0].serial == 2016091901
    with pytest.raises(dns.xfr.TransferError):
        transfer(lab_dns_v2, NS2, "kp")
    assert ask(lab_dns_v2, NS1, "friend.com.kp").rcode() == dns.rcode.NXDOMAIN
    assert ask(lab_dns_v2, NS1, "newsite.com.kp").answer[0][0].address == "127.45.177.40"
    assert lab_world.resolve("kcna.kp", "A") == ["127.45.176.71"]
    assert lab_world_v2.resolve("kcna.kp", "A") == ["127.45.177.71"]
    assert transfer(lab_dns_v2, REG2, "kcna.kp").get_rdataset("@", "SOA")[0].serial == 2016091901


def test_world_addresses_and_sites(lab_world):
    addresses = lab_world.addresses()
    assert {NS1, NS2, REG1, REG2, "127.45.179.53", "127.45.176.71", "127.45.176.110"} <= set(
        addresses
    )
    assert all(address.startswith("127.") for address in addresses)
    assert lab_world.site_files("../../etc") is None


def test_version_2_changes_sites_file_by_file(lab_world, lab_world_v2):
    """The v2 overlay holds only changed files; the rest of a site is version 1's."""
    v1, v2 = lab_world.site_files("tourismdprk.gov.kp"), lab_world_v2.site_files(
        "tourismdprk.gov.kp")
    assert v1 is not None and v2 is not None
    assert set(v1) - set(v2) == {"ja/index.html"}  # REMOVED lists ja/
    assert v2["en/index.html"] == v1["en/index.html"]  # unchanged: the base file
    assert "v2" in v2["site.toml"].parts and "hang_paths" in v2["site.toml"].read_text()
    youth = lab_world_v2.site_files("youth.rep.kp")
    assert youth is not None and "v2" in youth["index.html"].parts
    assert youth["site.toml"] == lab_world.site_files("youth.rep.kp")["site.toml"]
    assert lab_world.site_files("koredufund.org.kp") is not None
    assert lab_world_v2.site_files("koredufund.org.kp") is None  # REMOVED lists nothing


def test_bad_world_is_a_clear_error(tmp_path):
    with pytest.raises(LabError, match=r"world\.toml"):
        load_world(str(tmp_path))
    with pytest.raises(LabError, match="no embedded world"):
        load_world("atlantis")
    (tmp_path / "world.toml").write_text('zone = "kp"\nresolver = "127.45.179.53"\n')
    with pytest.raises(LabError, match="apex"):
        load_world(str(tmp_path))


def test_lab_flags(lab_world):
    lab = Lab(lab_world, 5300)
    assert lab.flags() == (
        "--resolver 127.45.179.53:5300 --ns-port 5300 --no-seeds "
        "--ip-range 127.45.176.0/22 --allow-net 127.0.0.0/8"
    )


def test_census_lab_command(lab_world):
    port = free_port(lab_world.addresses())
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-c", "from crawler.cli import cli; cli()", "lab",
               "--dns-port", str(port), "--http-port", "0", "--https-port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("flags: "):
                break
        flags = lines[-1].removeprefix("flags: ").split()
        assert flags[:4] == ["--resolver", f"127.45.179.53:{port}", "--ns-port", str(port)]
        response = dns.query.udp(
            dns.message.make_query("www.kcna.kp", "A"), "127.45.179.53", port=port, timeout=2
        )
        assert response.answer[0][0].address == "127.45.176.71"
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert process.returncode == 0


def test_registrant_zone_transfer_refused_on_8_allowed_on_9(lab_dns):
    with pytest.raises(dns.xfr.TransferError):
        transfer(lab_dns, REG1, "airkoryo.com.kp")
    got = transfer(lab_dns, REG2, "airkoryo.com.kp")
    assert got.get_rdataset("booking", "A")[0].address == "127.45.176.97"


def test_world_from_a_folder_with_a_big_zone_transfers_in_many_messages(tmp_path):
    (tmp_path / "zones").mkdir()
    (tmp_path / "world.toml").write_text(
        'zone = "big"\nresolver = "127.46.0.53"\n'
        '[[servers]]\nname = "ns.big"\naddress = "127.46.0.1"\nzones = ["big"]\naxfr = true\n'
    )
    lines = ["$ORIGIN big.", "$TTL 3600", "@ SOA ns.big. root.big. 1 2 3 4 5", "@ NS ns.big.",
             "ns A 127.46.0.1"]
    lines += [f"d{i} NS ns.d{i}\nns.d{i} A 127.46.1.{i % 250}" for i in range(3000)]
    (tmp_path / "zones" / "big.zone").write_text("\n".join(lines) + "\n")
    world = load_world(str(tmp_path))
    with LabDNS(world, free_port(world.addresses())) as lab:
        messages = list(dns.query.xfr("127.46.0.1", "big", port=lab.port))
    assert len(messages) > 5
    # SOA twice, the apex NS, ns.big's A, then a NS and a glue A per delegation.
    assert sum(len(rrset) for m in messages for rrset in m.answer) == 2 + 1 + 1 + 6000
