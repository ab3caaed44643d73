"""The ``census`` group: its options say how much the commands log and how they show progress."""

from __future__ import annotations

import logging
import sys

import click

from .. import __version__


@click.group()
@click.version_option(__version__, prog_name="census")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors; no progress bar.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """Take the census of a country-code top-level domain.

    \b
    Example:
        census run                  # the census of .kp, from the embedded profile
        census lab &                # an offline replica of .kp; prints the flags
        census run kp --db lab.db FLAGS-PRINTED-BY-CENSUS-LAB
        census diff                 # what changed since the previous run
    """
    level = logging.WARNING if quiet else (logging.INFO if verbose <= 1 else logging.DEBUG)
    if verbose or quiet:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    else:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    # A dead site is a fact for the census, not an error for the terminal: Scrapy's own
    # messages only with -v (warnings) or -vv (everything).
    quiet_level = {0: logging.CRITICAL, 1: logging.WARNING}.get(verbose, logging.DEBUG)
    for noisy in ("scrapy", "twisted", "py.warnings", "protego"):
        logging.getLogger(noisy).setLevel(quiet_level)
    mode = None if quiet else "bar" if sys.stderr.isatty() else "lines"
    ctx.obj = {"progress": mode}
