"""TSIG (RFC 8945) for zone transfers: sign the AXFR query, check every signed answer.

Registries that publish their zone by transfer sometimes hand out a public key instead of an
open ACL (SWITCH for .ch and .li).  The key is given as ``NAME:ALG:SECRET`` (``--tsig`` or a
profile's ``[transfer.tsig]``).  The query is signed with dnspython; the answer stream is
checked message by message without parsing it: the TSIG record is the last one of a signed
message, so :func:`split_tsig` finds it from the tail, :meth:`Verifier.strip` validates it
with ``dns.tsig.validate`` (chained over the messages, as RFC 8945 5.3.1 asks) and hands the
message without it to the fast reader.  A server that rejects the key answers NOTAUTH with a
TSIG error; :func:`rejection` turns that into one sentence.
"""

from __future__ import annotations

import base64
import binascii
import struct
import time
from dataclasses import dataclass, field
from typing import Any

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.tsig

from ..errors import CensusError, TransferError

_TSIG_HEAD = struct.pack("!HHI", dns.rdatatype.TSIG, dns.rdataclass.ANY, 0)
ALGORITHMS = {
    "hmac-md5": dns.tsig.HMAC_MD5,
    "hmac-sha1": dns.tsig.HMAC_SHA1,
    "hmac-sha224": dns.tsig.HMAC_SHA224,
    "hmac-sha256": dns.tsig.HMAC_SHA256,
    "hmac-sha384": dns.tsig.HMAC_SHA384,
    "hmac-sha512": dns.tsig.HMAC_SHA512,
}


class TsigSpecError(CensusError):
    """A TSIG key is not NAME:ALG:SECRET with a known algorithm and a base64 secret."""


@dataclass(frozen=True)
class TsigKey:
    """A TSIG key; its text form hides the secret (runs.options records the name only)."""

    name: str
    algorithm: str
    secret: str = field(repr=False)

    @classmethod
    def parse(cls, spec: str) -> TsigKey:
        """``NAME:ALG:SECRET`` (``dig -y`` puts ALG first; the census puts the name first)."""
        parts = spec.strip().split(":")
        if len(parts) != 3 or not all(parts):
            raise TsigSpecError(f"invalid TSIG key {_masked(spec)!r}: expected NAME:ALG:SECRET")
        name, algorithm, secret = parts
        algorithm = algorithm.lower()
        if algorithm not in ALGORITHMS:
            raise TsigSpecError(
                f"invalid TSIG key {name!r}: unknown algorithm {algorithm!r} "
                f"(one of {', '.join(sorted(ALGORITHMS))})"
            )
        try:
            base64.b64decode(secret, validate=True)
            dns.name.from_text(name)
        except (binascii.Error, ValueError, dns.exception.DNSException) as exc:
            raise TsigSpecError(f"invalid TSIG key {name!r}: {exc}") from None
        return cls(name.lower().rstrip("."), algorithm, secret)

    def __str__(self) -> str:
        return f"{self.name}:{self.algorithm}"

    @property
    def key(self) -> dns.tsig.Key:
        return dns.tsig.Key(self.name, self.secret, ALGORITHMS[self.algorithm])


def _masked(spec: str) -> str:
    head, _, _ = spec.rpartition(":")
    return f"{head}:..." if head else "..."


def signed_query(zone: str, rdtype: str, key: TsigKey) -> tuple[bytes, bytes]:
    """The wire of a query signed with ``key`` and its MAC (the first answer signs over it)."""
    request = dns.message.make_query(zone, rdtype)
    request.use_tsig(key.key)
    wire = request.to_wire()
    return wire, request.mac


def split_tsig(wire: bytes, owner: bytes) -> int | None:
    """Where the TSIG record of ``wire`` starts, or None if the message is unsigned.

    The TSIG record is the last additional record: found from the tail (type, class ANY,
    TTL 0, an rdlength that reaches the end exactly), its owner the key name ``owner`` in
    wire form, written uncompressed by the servers we know.
    """
    if len(wire) < 12 or not struct.unpack_from("!H", wire, 10)[0]:
        return None
    end = len(wire)
    pos = wire.rfind(_TSIG_HEAD, 12)
    while pos >= 12:
        if pos + 10 <= end and pos + 10 + struct.unpack_from("!H", wire, pos + 8)[0] == end:
            start = pos - len(owner)
            if start >= 12 and wire[start:pos].lower() == owner:
                return start
        pos = wire.rfind(_TSIG_HEAD, 12, pos)
    return None


@dataclass
class Verifier:
    """Checks the TSIG of each message of a signed transfer, in order."""

    key: TsigKey
    request_mac: bytes
    zone: str = ""
    _ctx: Any = None
    _owner: bytes = b""
    _messages: int = 0
    _signed_last: bool = False

    def __post_init__(self) -> None:
        self._owner = dns.name.from_text(self.key.name).to_wire().lower()  # type: ignore[union-attr]

    def strip(self, wire: bytes) -> bytes:
        """``wire`` without its TSIG record, after checking it; raises ``TransferError``."""
        self._messages += 1
        start = split_tsig(wire, self._owner)
        if start is None:
            if self._ctx is None:
                raise TransferError(
                    f"{self.zone}: answer {self._messages} is not signed with TSIG key "
                    f"{self.key.name}"
                )
            # unsigned messages between signed ones count in the next signature
            self._ctx.update(wire)
            self._signed_last = False
            return wire
        try:
            rdata = dns.rdata.from_wire(
                dns.rdataclass.ANY, dns.rdatatype.TSIG, wire, start + len(self._owner) + 10,
                len(wire) - start - len(self._owner) - 10,
            )
            self._ctx = dns.tsig.validate(
                wire, self.key.key, dns.name.from_text(self.key.name), rdata, int(time.time()),
                self.request_mac, start, self._ctx, multi=True,
            )
        except dns.exception.DNSException as exc:
            raise TransferError(
                f"{self.zone}: answer {self._messages} fails TSIG key {self.key.name}: "
                f"{_why(exc)}"
            ) from None
        self._signed_last = True
        count = struct.unpack_from("!H", wire, 10)[0]
        return wire[:10] + struct.pack("!H", count - 1) + wire[12:start]

    def finish(self) -> None:
        if self._messages and not self._signed_last:
            raise TransferError(f"{self.zone}: the last answer is not signed")


def _why(exc: Exception) -> str:
    return (exc.__doc__ or type(exc).__name__).strip().splitlines()[0].rstrip(".")


def rejection(wire: bytes, key: TsigKey | None, request_mac: bytes | None) -> str | None:
    """Why the server refused a signed query, from the TSIG error of its answer, if it says."""
    try:
        keyring = {dns.name.from_text(key.name): key.key} if key else None
        dns.message.from_wire(wire, keyring=keyring, request_mac=request_mac or b"")
    except dns.tsig.PeerError as exc:
        code = {
            dns.tsig.PeerBadKey: "BADKEY: the server does not know this key name",
            dns.tsig.PeerBadSignature: "BADSIG: wrong secret or algorithm",
            dns.tsig.PeerBadTime: "BADTIME: the clocks differ too much",
        }.get(type(exc), _why(exc))
        name = key.name if key else "?"
        return f"the server rejected TSIG key {name} ({code})"
    except dns.exception.DNSException:
        return None
    return None
