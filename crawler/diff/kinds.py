"""The vocabulary of a diff: what kinds of change there are, and one change as a value.

Kept apart from the SQL that finds changes and the code that prints them, because both (and
``crawler/report.py``) need the same kinds, titles and order of importance.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    """``changes.kind``; the order is the order of importance in reports."""

    AXFR_OPENED = "axfr_opened"
    """A nameserver now gives the zone by transfer (how the 2016 leak was noticed)."""
    AXFR_CLOSED = "axfr_closed"
    """A nameserver that gave the zone by transfer no longer does."""
    DOMAIN_ADDED = "domain_added"
    DOMAIN_REMOVED = "domain_removed"
    ZONE_ADDED = "zone_added"
    """A zone or delegated sub-zone the earlier run did not see."""
    ZONE_REMOVED = "zone_removed"
    SOA_SERIAL = "soa_serial"
    NAMESERVERS = "nameservers"
    """The set of ``ns_name address`` of a zone."""
    ADDRESS = "address"
    """A or AAAA records of a name (``detail`` says which)."""
    MX = "mx"
    TXT = "txt"
    CNAME = "cname"
    DELEGATION = "delegation"
    """NS records of a name below the zone."""
    CAA = "caa"
    SITE_UP = "site_up"
    """Sites are compared per domain (the crawler keeps one ``sites`` row per domain)."""
    SITE_DOWN = "site_down"
    HTTP_STATUS = "http_status"
    TITLE = "title"
    CERTIFICATE = "certificate"
    """Subject, issuer or names of the site's certificate; validity dates alone are not."""
    LABEL_CHANGED = "label_changed"
    PAGE_ADDED = "page_added"
    PAGE_REMOVED = "page_removed"
    """Answered before; now absent from the crawl or 404/410 (``after`` says which)."""
    PAGE_UNREACHABLE = "page_unreachable"
    """Answered before; now 5xx, another error status or no answer (a timeout): it may
    still exist, so it is neither removed nor changed."""
    PAGE_CHANGED = "page_changed"
    """Content hash differs; ``detail`` is a bounded unified diff of the extracted text."""


HEADLINES = (Kind.AXFR_OPENED, Kind.AXFR_CLOSED)

TITLES: dict[Kind, str] = {
    Kind.AXFR_OPENED: "Zone transfer now possible",
    Kind.AXFR_CLOSED: "Zone transfer no longer possible",
    Kind.DOMAIN_ADDED: "Domains added",
    Kind.DOMAIN_REMOVED: "Domains removed",
    Kind.ZONE_ADDED: "Zones added",
    Kind.ZONE_REMOVED: "Zones removed",
    Kind.SOA_SERIAL: "SOA serial",
    Kind.NAMESERVERS: "Nameservers",
    Kind.ADDRESS: "Addresses",
    Kind.MX: "MX records",
    Kind.TXT: "TXT records",
    Kind.CNAME: "CNAME records",
    Kind.DELEGATION: "Delegations (NS records)",
    Kind.CAA: "CAA records",
    Kind.SITE_UP: "Sites up",
    Kind.SITE_DOWN: "Sites down",
    Kind.HTTP_STATUS: "HTTP status",
    Kind.TITLE: "Site titles",
    Kind.CERTIFICATE: "Certificates",
    Kind.LABEL_CHANGED: "Purpose labels",
    Kind.PAGE_ADDED: "Pages added",
    Kind.PAGE_REMOVED: "Pages removed",
    Kind.PAGE_UNREACHABLE: "Pages unreachable",
    Kind.PAGE_CHANGED: "Pages changed",
}

RECORD_KINDS: dict[str, Kind] = {
    "A": Kind.ADDRESS,
    "AAAA": Kind.ADDRESS,
    "MX": Kind.MX,
    "TXT": Kind.TXT,
    "CNAME": Kind.CNAME,
    "NS": Kind.DELEGATION,
    "CAA": Kind.CAA,
}
"""DNS record types compared per name; SOA is compared per zone (``soa_serial``)."""

ORDER = {kind: i for i, kind in enumerate(Kind)}
"""Rank of each kind in reports (0 first)."""


@dataclass(frozen=True)
class Change:
    """One row of ``changes``: what changed (``kind``) about what (``subject``)."""

    kind: Kind
    subject: str
    domain: str | None
    before: str | None
    after: str | None
    detail: str | None


def changes_from_rows(rows: Iterable[Sequence[Any]]) -> list[Change]:
    """``(kind, subject, domain, before, after, detail)`` rows as changes, in report order.

    Fresh comparisons and stored ``changes`` rows go through here alike, so a report read
    back from the table lists its changes exactly as the comparison that wrote it did.
    """
    changes = [Change(Kind(r[0]), *r[1:]) for r in rows]
    changes.sort(key=lambda c: (ORDER[c.kind], c.subject, c.detail or ""))
    return changes
