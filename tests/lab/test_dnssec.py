"""The lab's signed zones (world ``signed``), over real sockets: the proofs a walker reads."""

from __future__ import annotations

from collections.abc import Iterator

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from crawler.lab import LabDNS, LabError, free_port, load_world
from crawler.lab.dnssec import nsec3_hash

NS1 = "127.45.184.1"


@pytest.fixture(scope="module")
def signed() -> Iterator[LabDNS]:
    world = load_world("signed")
    with LabDNS(world, free_port(world.addresses())) as lab:
        yield lab


def ask(lab: LabDNS, name: str, rdtype: str = "A") -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, want_dnssec=True)
    query.flags &= ~dns.flags.RD
    return dns.query.udp(query, NS1, port=lab.port, timeout=2)


def records(response: dns.message.Message, rdtype: str) -> dict[str, list[str]]:
    wanted = dns.rdatatype.from_text(rdtype)
    return {r.name.to_text(): sorted(rd.to_text() for rd in r)
            for r in response.answer + response.authority if r.rdtype == wanted}


def test_a_secure_delegation_is_a_referral_with_its_ds_and_no_nsec(signed) -> None:
    response = ask(signed, "bravo.zz", "NSEC")
    assert not response.flags & dns.flags.AA
    assert records(response, "NS") == {"bravo.zz.": ["ns1.host.zz.", "ns2.host.zz."]}
    assert "bravo.zz." in records(response, "DS")
    assert records(response, "NSEC") == {}


def test_an_insecure_delegation_carries_the_nsec_that_proves_no_ds(signed) -> None:
    response = ask(signed, "juliett.zz", "A")
    assert records(response, "NSEC") == {"juliett.zz.": ["kilo.zz. NS NSEC"]}


def test_the_name_after_a_delegation_is_denied_by_the_delegations_nsec(signed) -> None:
    response = ask(signed, "bravo\\000.zz")
    assert response.rcode() == dns.rcode.NXDOMAIN
    assert records(response, "NSEC")["bravo.zz."] == ["charlie.zz. NS DS NSEC"]
    assert "zz." in records(response, "NSEC"), "the apex NSEC denies the wildcard"


def test_nsec3_denial_proves_the_closest_encloser_the_name_and_the_wildcard(signed) -> None:
    response = ask(signed, "nosuch.co.zz")
    assert response.rcode() == dns.rcode.NXDOMAIN
    proofs = records(response, "NSEC3")
    apex = nsec3_hash(dns.name.from_text("co.zz")) + ".co.zz."
    assert apex in proofs and proofs[apex][0].startswith("1 0 0 - ")
    digest = nsec3_hash(dns.name.from_text("nosuch.co.zz"))
    spans = [(owner.split(".")[0], value[0].split()[4].lower()) for owner, value in proofs.items()]
    assert any(low < digest < high or high < low < digest or digest < high < low
               for low, high in spans), "one record's span holds the name's hash"
    assert records(ask(signed, "co.zz", "NSEC3PARAM"), "NSEC3PARAM") == {"co.zz.": ["1 0 0 -"]}


def test_opt_out_leaves_insecure_delegations_out_of_the_chain(signed) -> None:
    world = load_world("signed")
    denial = world.denials["net.zz"]
    assert len(denial.hashes) == 5
    assert nsec3_hash(dns.name.from_text("cable.net.zz")) not in denial.hashes
    assert nsec3_hash(dns.name.from_text("mesh.net.zz")) in denial.hashes
    response = ask(signed, "cable.net.zz")
    assert all(v[0].split()[1] == "1" for v in records(response, "NSEC3").values())


def test_lab_hashes_are_rfc_5155_hashes() -> None:
    name = dns.name.from_text("x7k2q.co.zz")
    assert nsec3_hash(name) == dns.dnssec.nsec3_hash(name, None, 0, 1).lower()


def test_unsigned_world_has_no_denial_records(lab_dns) -> None:
    query = dns.message.make_query("nosuch.kp", "A", want_dnssec=True)
    response = dns.query.udp(query, "127.45.176.15", port=lab_dns.port, timeout=2)
    assert response.rcode() == dns.rcode.NXDOMAIN
    assert [r.rdtype for r in response.authority] == [dns.rdatatype.SOA]


def test_a_bad_dnssec_entry_is_refused(tmp_path) -> None:
    (tmp_path / "zones").mkdir()
    (tmp_path / "zones" / "zz.zone").write_text("@ 3600 SOA a. b. 1 1 1 1 1\n@ 3600 NS a.\n")
    (tmp_path / "world.toml").write_text('zone = "zz"\nresolver = "127.0.0.53"\n'
                                         '[dnssec]\nzz = "nsec5"\n')
    with pytest.raises(LabError, match="nsec5"):
        load_world(str(tmp_path))
