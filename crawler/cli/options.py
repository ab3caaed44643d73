"""Options several commands share, and the turning of them into the library's options."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from ..errors import CensusError

DEFAULT_DB = "output/census.db"
DEFAULT_OUT = "output"


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CensusError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


def db_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--db",
        "db_path",
        default=DEFAULT_DB,
        show_default=True,
        type=click.Path(dir_okay=False),
        help="The census database.",
    )(fn)


def probe_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by ``census run`` and ``census probe``."""
    options = [
        click.option(
            "--out",
            "out_dir",
            default=DEFAULT_OUT,
            show_default=True,
            type=click.Path(file_okay=False),
            help="Where a run writes its files.",
        ),
        click.option(
            "--profile",
            "profile_path",
            type=click.Path(dir_okay=False),
            help="A zone profile (TOML) instead of the embedded one.",
        ),
        click.option(
            "--resolver",
            "resolvers",
            multiple=True,
            metavar="HOST[:PORT]",
            help="Recursive resolver to ask (repeatable; default: the system's).",
        ),
        click.option(
            "--ns-port",
            type=int,
            default=53,
            show_default=True,
            help="Port of the authoritative servers (the lab uses another).",
        ),
        click.option("--no-seeds", is_flag=True, help="Do not use the profile's seed names."),
        click.option(
            "--wordlist",
            "wordlist_path",
            type=click.Path(dir_okay=False),
            help="Labels to probe under each suffix instead of the embedded list.",
        ),
        click.option("--no-wordlist", is_flag=True, help="Skip wordlist probing."),
        click.option(
            "--ip-range",
            "ip_ranges",
            multiple=True,
            metavar="CIDR",
            help="Range for the PTR sweep (repeatable; overrides the profile's).",
        ),
        click.option(
            "--allow-net",
            "allow_nets",
            multiple=True,
            metavar="CIDR",
            help="Allow connecting to this non-global range (repeatable).",
        ),
        click.option("--timeout", type=float, help="Seconds to wait for one DNS answer."),
        click.option("--qps", type=float, help="Queries per second per server."),
        click.option(
            "--tsig",
            metavar="NAME:ALG:SECRET",
            help="TSIG key signing the zone's transfers (overrides the profile's).",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def census_options(zone: str | None, db_path: str, **kw: Any) -> Any:
    from ..census import CensusOptions

    return CensusOptions(
        zone=zone,
        db_path=db_path,
        out_dir=kw["out_dir"],
        profile_path=kw["profile_path"],
        resolvers=tuple(kw["resolvers"]),
        ns_port=kw["ns_port"],
        seeds=not kw["no_seeds"],
        wordlist_path=kw["wordlist_path"],
        wordlist=not kw["no_wordlist"],
        ip_ranges=tuple(kw["ip_ranges"]),
        allow_nets=tuple(kw["allow_nets"]),
        timeout=kw["timeout"],
        qps=kw["qps"],
        tsig=kw["tsig"],
        crawl=kw.get("crawl", {}),
    )


def crawl_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Options of the crawl stage, shared by ``census run`` and ``census crawl``."""
    options = [
        click.option("--max-pages", type=click.IntRange(1), help="Page budget per site [200]."),
        click.option("--ignore-robots", is_flag=True,
                     help="Do not obey robots.txt (recorded in the run and the WARC)."),
        click.option("--delay", type=click.FloatRange(0),
                     help="Seconds between requests to a host [1]."),
        click.option("--download-timeout", type=click.FloatRange(0.1),
                     help="Seconds to wait for a page [20]."),
        click.option("--http-port", type=click.IntRange(1, 65535),
                     help="Connect to this port for http:// URLs (the lab's web)."),
        click.option("--https-port", type=click.IntRange(1, 65535),
                     help="Connect to this port for https:// URLs (the lab's web)."),
        click.option("--browser", type=click.Choice(["auto", "always", "never"]),
                     help="Render sites in headless Chromium after the crawl: auto (a home "
                          "page with scripts and almost no text, or script-found pages the "
                          "crawl saw empty), always, never [auto]."),
        click.option("--no-wacz", is_flag=True,
                     help="Do not package the run's WARCs as a WACZ after the crawl."),
        click.option("--redis", metavar="URL",
                     help="Crawl with census worker processes on any machines, through this "
                          "Redis (redis://HOST[:PORT]/DB); this process writes the census."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def crawl_dict(kw: dict[str, Any]) -> dict[str, Any]:
    """The crawl options given on the command line, as stored in ``runs.options``."""
    keys = ("max_pages", "delay", "download_timeout", "http_port", "https_port", "browser",
            "redis")
    crawl = {k: kw.pop(k) for k in keys if kw.get(k) is not None}
    for k in keys:
        kw.pop(k, None)
    if kw.pop("ignore_robots", False):
        crawl["ignore_robots"] = True
    if kw.pop("no_wacz", False):
        crawl["wacz"] = False
    return crawl
