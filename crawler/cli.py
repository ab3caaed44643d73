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


class Progress:
    """Draws the library's ``progress(step, done, total)`` callbacks as one tqdm bar per step."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None
        self.step: str | None = None

    def __call__(self, step: str, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        if step != self.step:
            self.close()
            self.step = step
            self.bar = tqdm(total=total, desc=step, unit="q", leave=False, file=sys.stderr)
        if total is not None and self.bar.total != total:
            self.bar.total = total
        self.bar.n = done
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def census_options(zone: str | None, db_path: str, **kw: Any) -> Any:
    from .census import CensusOptions

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
        crawl=kw.get("crawl", {}),
    )


def report_run(db_path: str, run_id: int) -> None:
    from .db import get_run, open_census

    db = open_census(db_path)
    run = get_run(db, run_id)
    domains = db.execute(
        "SELECT count(DISTINCT domain) FROM sightings WHERE run_id = ?", [run_id]
    ).fetchone()[0]
    click.echo(f"run {run_id} of .{run['zone']}: {run['status']}, {domains} domains -> {db_path}")
    if run["message"]:
        click.echo(run["message"])
    db.close()


@cli.command()
@click.argument("zone")
@db_option
@probe_options
@click.pass_context
@handle_errors
def probe(ctx: click.Context, zone: str, db_path: str, **kw: Any) -> None:
    """Enumerate ZONE by DNS into the census, as a new run.

    NS sets from parent and child, a zone transfer from every nameserver address of the zone
    and of every delegated sub-zone, then seeds, wordlist, NSEC walk and a PTR sweep; A, AAAA,
    NS, MX, TXT, SOA, CNAME and CAA of every domain and its www. and mail. hosts.

    \b
    Example:
        census probe kp --resolver 127.45.179.53:5300 --ns-port 5300 \\
            --no-seeds --ip-range 127.45.176.0/22 --db lab.db
    """
    from .census import run_census

    progress = Progress(ctx.obj["progress"])
    try:
        run_id = run_census(census_options(zone, db_path, **kw), ["probe"], progress)
    except KeyboardInterrupt:
        progress.close()
        raise click.ClickException("interrupted: the run is marked 'interrupted'") from None
    progress.close()
    report_run(db_path, run_id)


@cli.command()
@click.argument("world", default="kp")
@click.option("--version", "world_version", type=click.IntRange(1, 2), default=1,
              show_default=True, help="Version of the world (2: the re-run changes).")
@click.option("--dns-port", type=int, help="DNS port [default: 53 as root, else 5300].")
@click.option("--http-port", type=int, help="HTTP port [default: 80 as root, else 8080].")
@click.option("--https-port", type=int, help="HTTPS port [default: 443 as root, else 8443].")
@handle_errors
def lab(world: str, world_version: int, dns_port: int | None, http_port: int | None,
        https_port: int | None) -> None:
    """Serve the offline replica WORLD (default: kp) on loopback until Ctrl-C.

    Prints what it serves, then the options that point a run at it.

    \b
    Example:
        census lab --dns-port 5300 &
        census run kp --db lab.db <the printed flags>
    """
    import os
    import signal
    import threading

    from .lab import Lab, load_world

    root = os.geteuid() == 0
    loaded = load_world(world, world_version)
    the_lab = Lab(
        loaded,
        dns_port if dns_port is not None else (53 if root else 5300),
        http_port if http_port is not None else (80 if root else 8080),
        https_port if https_port is not None else (443 if root else 8443),
    )
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    with the_lab:
        click.echo(f"lab world {loaded.name} version {loaded.version}: {loaded.description}")
        click.echo(f"  resolver  {loaded.resolver_address}:{the_lab.dns_port}")
        for spec in loaded.servers:
            faults = " ".join(f"{k}={v}" for k, v in spec.faults.items())
            click.echo(f"  dns       {spec.address}:{the_lab.dns_port} {spec.name} "
                       f"axfr={'yes' if spec.axfr else 'no'} {faults}".rstrip())
        if the_lab.web is not None:
            click.echo(f"  web       http :{the_lab.http_port}  https :{the_lab.https_port}")
        else:
            click.echo("  web       off (no web port given, or no crawler.lab.webserver)")
        click.echo(f"flags: {the_lab.flags()}", nl=True)
        sys.stdout.flush()
        try:
            while not stopping.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass


@cli.command()
@click.argument("runs", nargs=-1, type=int, metavar="[RUN_A RUN_B]")
@db_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json"]),
    default="text",
    show_default=True,
    help="Report format; json keys are documented in crawler/diff.py.",
)
@click.option("--zone", help="Compare the last two complete runs of this zone.")
@click.option("--force", is_flag=True, help="Compare failed or interrupted runs too.")
@handle_errors
def diff(runs: tuple[int, ...], db_path: str, fmt: str, zone: str | None, force: bool) -> None:
    """What changed between two runs, also written into the changes table.

    With no RUN, the last two complete runs of the zone; with one, that run and the complete
    run before it.  Failed, interrupted and running runs are never a silent baseline.

    \b
    Example:
        census diff                      # the last two complete runs
        census diff 3 5 --format markdown
    """
    from pathlib import Path

    from .census import census_writer
    from .diff import compare_runs
    from .errors import RunNotFound

    if not Path(db_path).exists():
        raise RunNotFound(f"no census database at {db_path}")
    if len(runs) > 2:
        raise click.UsageError("give at most two runs: RUN_A RUN_B")
    run_a, run_b = (None, None, *runs)[-2:]
    with census_writer(db_path) as db:
        result = compare_runs(db, run_a, run_b, zone=zone, force=force)
    report = {"text": result.to_text, "markdown": result.to_markdown, "json": result.to_json}
    click.echo(report[fmt](), nl=fmt == "json")


@cli.command("runs")
@db_option
@click.option("--zone", help="Only the runs of this zone.")
@click.option("--json", "as_json", is_flag=True, help="A JSON array instead of a table.")
@handle_errors
def runs_command(db_path: str, zone: str | None, as_json: bool) -> None:
    """List the runs of the census with their status and counts.

    \b
    Example:
        census runs --db output/census.db
    """
    from .db import open_census
    from .runs import list_runs, runs_json, runs_table

    db = open_census(db_path, create=False)
    runs = list_runs(db, zone)
    db.close()
    click.echo(runs_json(runs) if as_json else runs_table(runs))
