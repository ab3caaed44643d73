"""The ``census`` command: parse the arguments, call one library function, print.

Every command is a thin layer over a function that the tests call too; a ``CensusError``
becomes one line on stderr and exit status 1.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any

import click

from . import __version__
from .errors import CensusError

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
        click.option("--out", "out_dir", default=DEFAULT_OUT, show_default=True,
                     type=click.Path(file_okay=False), help="Where a run writes its files."),
        click.option("--profile", "profile_path", type=click.Path(dir_okay=False),
                     help="A zone profile (TOML) instead of the embedded one."),
        click.option("--resolver", "resolvers", multiple=True, metavar="HOST[:PORT]",
                     help="Recursive resolver to ask (repeatable; default: the system's)."),
        click.option("--ns-port", type=int, default=53, show_default=True,
                     help="Port of the authoritative servers (the lab uses another)."),
        click.option("--no-seeds", is_flag=True, help="Do not use the profile's seed names."),
        click.option("--wordlist", "wordlist_path", type=click.Path(dir_okay=False),
                     help="Labels to probe under each suffix instead of the embedded list."),
        click.option("--no-wordlist", is_flag=True, help="Skip wordlist probing."),
        click.option("--ip-range", "ip_ranges", multiple=True, metavar="CIDR",
                     help="Range for the PTR sweep (repeatable; overrides the profile's)."),
        click.option("--allow-net", "allow_nets", multiple=True, metavar="CIDR",
                     help="Allow connecting to this non-global range (repeatable)."),
        click.option("--timeout", type=float, help="Seconds to wait for one DNS answer."),
        click.option("--qps", type=float, help="Queries per second per server."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@click.group()
@click.version_option(__version__, prog_name="census")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors; no progress bar.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """Take the census of a country-code top-level domain.

    \b
    Example:
        census lab &                          # an offline replica of .kp
        census probe kp --resolver 127.45.179.53:5300 --ns-port 5300 \\
            --no-seeds --ip-range 127.45.176.0/22 --db lab.db
    """
    level = logging.WARNING if quiet else (logging.INFO if verbose <= 1 else logging.DEBUG)
    if verbose or quiet:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    else:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    for noisy in ("scrapy", "twisted", "py.warnings"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING if verbose < 2 else level))
    ctx.obj = {"progress": not quiet and sys.stderr.isatty()}
