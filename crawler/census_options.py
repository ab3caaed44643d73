"""What a census run was asked to do (``CensusOptions``), as stored in ``runs.options`` and as
each stage reads it.

Kept apart from the run itself (``census``) and its stages (``stages``) because both, the CLI
and a resumed run read them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .errors import CensusError
from .probe.options import ProbeOptions
from .profiles import Profile, read_wordlist


@dataclass(frozen=True)
class CensusOptions:
    """Everything a run was asked to do; stored as JSON in ``runs.options``."""

    zone: str | None = None
    db_path: str = "output/census.db"
    out_dir: str = "output"
    profile_path: str | None = None
    resolvers: tuple[str, ...] = ()
    ns_port: int = 53
    seeds: bool = True
    wordlist_path: str | None = None
    wordlist: bool = True
    ip_ranges: tuple[str, ...] = ()
    allow_nets: tuple[str, ...] = ()
    timeout: float | None = None
    qps: float | None = None
    tsig: str | None = None
    """``NAME:ALG:SECRET`` for the zone's transfers; runs.options keeps only NAME:ALG."""
    crawl: dict[str, Any] = field(default_factory=dict)
    """Options of the crawl stage (max_pages, http_port, ignore_robots, ...)."""
    stages: tuple[str, ...] = ()
    """The stages the run was asked for (a resumed run does the rest of them)."""


def parse_resolver(text: str) -> tuple[str, int]:
    """``'127.0.0.1:5300'`` -> ``('127.0.0.1', 5300)``; ``'[::1]:53'`` and bare hosts work."""
    import ipaddress

    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":"):
            port = _port(rest[1:], text)
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = _port(port_text, text)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise CensusError(f"invalid resolver {text!r}: expected an IP address[:port]") from None
    return host, port


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise CensusError(f"invalid resolver {whole!r}: bad port {text!r}")
    return int(text)


def probe_options(options: CensusOptions, profile: Profile) -> ProbeOptions:
    if options.wordlist:
        wordlist: tuple[str, ...] = tuple(read_wordlist(profile, options.wordlist_path))
    else:
        wordlist = ()
    return ProbeOptions(
        resolvers=tuple(parse_resolver(r) for r in options.resolvers),
        ns_port=options.ns_port,
        seeds=options.seeds,
        wordlist=wordlist,
        ip_ranges=tuple(options.ip_ranges) or None,
        timeout=options.timeout,
        queries_per_second=options.qps,
        allow_net=tuple(options.allow_nets),
        tsig=options.tsig,
    )


def recorded(options: CensusOptions) -> dict[str, Any]:
    """``options`` as ``runs.options`` keeps them: a TSIG secret is not written down."""
    data = asdict(options)
    if options.tsig:
        data["tsig"] = options.tsig.rpartition(":")[0]
    if data["crawl"].get("redis"):  # nor a Redis password (census crawl --redis)
        parts = urlsplit(data["crawl"]["redis"])
        if parts.password:
            data["crawl"] = {**data["crawl"], "redis": parts._replace(
                netloc=f"{parts.username or ''}:***@{parts.hostname}"
                       + (f":{parts.port}" if parts.port else "")).geturl()}
    return data


def stored_options(run: dict[str, Any], **overrides: Any) -> CensusOptions:
    """The options a run was started with (``runs.options``), with ``overrides``."""
    stored = {k: v for k, v in run["options"].items() if k in CensusOptions.__dataclass_fields__}
    stored = {k: tuple(v) if isinstance(v, list) else v for k, v in stored.items()}
    stored.pop("tsig", None)  # recorded without its secret; only the probe transfers
    if "crawl" in overrides:
        overrides["crawl"] = {**stored.get("crawl", {}), **overrides["crawl"]}
    return CensusOptions(**{**stored, **overrides})
