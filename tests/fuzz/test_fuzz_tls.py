"""tls_facts() on odd certificates: built with odd names, dates and extensions, or a valid
certificate's DER mutated until OpenSSL still loads it.  It returns the facts or an error,
and what it returns is what the census pipeline can store."""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import json

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from crawler.crawl.spider import tls_facts
from tests.fuzz.harness import EXAMPLES, bounded, fuzz_for, mutants

pytestmark = [pytest.mark.fuzz, pytest.mark.slow]

NAME_TEXT = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=80)


@functools.cache
def signing_key():  # cryptography's key types are many; any signs
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def check(facts: dict | None) -> None:
    """What the pipeline does with the facts (``CensusPipeline.close_spider``)."""
    assert isinstance(facts, dict)
    if "error" in facts:
        assert isinstance(facts["error"], str)
        return
    assert isinstance(facts["issuer"], str) and isinstance(facts["subject"], str)
    json.dumps(facts["names"])
    for key in ("not_before", "not_after"):
        dt.datetime.fromisoformat(facts[key])


def twisted_certificate(der: bytes):  # a twisted.internet.ssl.Certificate, as Scrapy gives
    from OpenSSL import crypto
    from twisted.internet.ssl import Certificate

    return Certificate(crypto.load_certificate(crypto.FILETYPE_ASN1, der))


@st.composite
def certificates(draw: st.DrawFn) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    oids = [NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME, NameOID.LOCALITY_NAME,
            NameOID.EMAIL_ADDRESS, NameOID.SERIAL_NUMBER, NameOID.DOMAIN_COMPONENT]
    attributes = draw(st.lists(st.tuples(st.sampled_from(oids), NAME_TEXT), max_size=4))
    start = draw(st.datetimes(dt.datetime(1950, 1, 1), dt.datetime(9000, 1, 1),
                              timezones=st.just(dt.UTC)))
    end = draw(st.datetimes(dt.datetime(1950, 1, 1), dt.datetime(9999, 1, 1),
                            timezones=st.just(dt.UTC)))
    general = st.one_of(
        NAME_TEXT.map(lambda s: ("dns", s)),
        st.ip_addresses().map(lambda a: ("ip", a)),
        NAME_TEXT.map(lambda s: ("uri", s)),
        NAME_TEXT.map(lambda s: ("email", s)),
    )
    alt_names = draw(st.one_of(st.none(), st.lists(general, max_size=5)))
    try:
        name = x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes])
        builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(signing_key().public_key())
                   .serial_number(draw(st.integers(1, 2**159)))
                   .not_valid_before(start).not_valid_after(end))
        if alt_names is not None:
            make = {"dns": x509.DNSName, "ip": lambda a: x509.IPAddress(ipaddress.ip_address(a)),
                    "uri": x509.UniformResourceIdentifier, "email": x509.RFC822Name}
            builder = builder.add_extension(
                x509.SubjectAlternativeName([make[kind](v) for kind, v in alt_names]),
                critical=draw(st.booleans()))
        cert = builder.sign(signing_key(), hashes.SHA256())
    except (ValueError, TypeError, UnicodeError):
        assume(False)  # cryptography refuses to build it; a server could still send it
    return cert.public_bytes(serialization.Encoding.DER)


@functools.cache
def seed_certificates() -> list[bytes]:
    """The lab's own certificate and one with many names, as DER."""
    import tempfile
    from pathlib import Path

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from crawler.lab.webserver import make_certificate

    out = []
    with tempfile.TemporaryDirectory() as folder:
        for names in (["kcna.kp", "www.kcna.kp"], [f"s{i}.kp" for i in range(30)]):
            cert_path, _ = make_certificate(names, ["127.45.176.8"], Path(folder))
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            out.append(cert.public_bytes(serialization.Encoding.DER))
    return out


def test_fuzz_tls_facts_of_odd_certificates(fuzz_seconds: float) -> None:
    @EXAMPLES
    @given(der=certificates())
    def built(der: bytes) -> None:
        check(bounded(tls_facts, twisted_certificate(der), size=len(der)))

    @EXAMPLES
    @given(der=mutants(seed_certificates(), [b"\x00", b"\xff", b"\x30\x80", b"\x17\x0d",
                                             b"\x18\x0f", b"\x82\xff\xff"], max_size=20_000))
    def mutated(der: bytes) -> None:
        from OpenSSL import crypto

        try:
            certificate = twisted_certificate(der)
        except crypto.Error:
            return  # OpenSSL refuses it: the TLS handshake fails before the census sees it
        check(bounded(tls_facts, certificate, size=len(der)))

    fuzz_for(fuzz_seconds / 2, "tls_facts() built", built)
    fuzz_for(fuzz_seconds / 2, "tls_facts() mutated DER", mutated)
    assert tls_facts(None) is None
