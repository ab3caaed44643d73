"""Commands that take a census: a whole run, the probe alone, the crawl again, a crawl worker."""

from __future__ import annotations

import sys
from typing import Any

import click

from .group import cli
from .options import (
    census_options,
    crawl_dict,
    crawl_options,
    db_option,
    handle_errors,
    probe_options,
)
from .progress import run_with_progress


@cli.command()
@click.argument("zone", required=False)
@db_option
@probe_options
@crawl_options
@click.option("--screenshots", is_flag=True,
              help="Screenshot each live site's home page with the system's chromium.")
@click.option("--resume", is_flag=True,
              help="Continue the latest run if it was interrupted, with its own options "
                   "(give --tsig again; no prompt, for cron); otherwise start a new run.")
@click.option("--new", "new_run", is_flag=True,
              help="Start a new run even if the latest was interrupted (no prompt).")
@click.pass_context
@handle_errors
def run(ctx: click.Context, zone: str | None, db_path: str, screenshots: bool, resume: bool,
        new_run: bool, **kw: Any) -> None:
    """Take the census of ZONE (default: kp, with the embedded profile): probe, then crawl.

    A new run in the census database: the DNS probe enumerates the zone, then the crawl
    snapshots every live site into WARC files under --out and pages into the census.
    When the latest run was interrupted, --resume continues it (the run's own options are
    used), --new starts afresh, and with neither a terminal asks which.

    \b
    Example:
        census run                                  # .kp from the embedded profile
        census run kp --resolver 127.45.179.53:5300 ...  # the lab: see census lab
        census run --resume                         # cron: continue an interrupted run
    """
    from ..census import census_stages, run_census
    from ..resume import resumable_run, resume_census

    if resume and new_run:
        raise click.UsageError("give --resume or --new, not both")
    interrupted = None if new_run else resumable_run(db_path, zone)
    if interrupted is not None and not resume:
        if sys.stdin.isatty():
            resume = click.confirm(f"run {interrupted} was interrupted; continue it?",
                                   default=True)
        else:
            click.echo(f"run {interrupted} was interrupted; starting a new run "
                       "(census run --resume continues it)", err=True)
    if resume and interrupted is not None:
        run_with_progress(
            ctx, lambda progress: resume_census(db_path, interrupted, progress, kw.get("tsig")),
            db_path
        )
        return
    crawl = crawl_dict(kw)
    options = census_options(zone, db_path, crawl=crawl, **kw)
    stages = census_stages(screenshots=screenshots)
    run_with_progress(
        ctx, lambda progress: run_census(options, stages, progress=progress), db_path
    )


@cli.command()
@click.option("--run", "run_id", type=int, help="The run to crawl [default: the latest].")
@db_option
@crawl_options
@click.option("--allow-net", "allow_nets", multiple=True, metavar="CIDR",
              help="Allow connecting to this non-global range (repeatable).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Where the WARC files go [default: the run's].")
@click.pass_context
@handle_errors
def crawl(ctx: click.Context, run_id: int | None, db_path: str, allow_nets: tuple[str, ...],
          out_dir: str | None, **kw: Any) -> None:
    """Snapshot every live site of an existing run (default: the latest) again.

    Options not given are those the run was started with (the defaults in brackets are
    those of a new run).  Classify the run again afterwards: census classify --run ID.

    \b
    Example:
        census crawl --run 3 --max-pages 50
    """
    from ..census import run_stage

    overrides: dict[str, Any] = {}
    crawl_given = crawl_dict(kw)
    if crawl_given:
        overrides["crawl"] = crawl_given
    if allow_nets:
        overrides["allow_nets"] = tuple(allow_nets)
    if out_dir:
        overrides["out_dir"] = out_dir
    run_with_progress(
        ctx, lambda progress: run_stage("crawl", db_path, run_id, overrides, progress), db_path
    )


@cli.command()
@click.argument("zone")
@db_option
@probe_options
@click.pass_context
@handle_errors
def probe(ctx: click.Context, zone: str, db_path: str, **kw: Any) -> None:
    """Enumerate ZONE by DNS into the census, as a new run.

    NS sets from parent and child, a zone transfer from every nameserver address of the zone
    and of every delegated sub-zone, then seeds, wordlist, the NSEC chain walked or the NSEC3
    chain collected and cracked, a PTR sweep, and the parent's referral of every domain found
    delegated; A, AAAA, NS, MX, TXT, SOA, CNAME and CAA of every domain and its www. and mail.
    hosts.

    \b
    Example:
        census probe kp --resolver 127.45.179.53:5300 --ns-port 5300 \\
            --no-seeds --ip-range 127.45.176.0/22 --db lab.db
    """
    from ..census import run_census

    options = census_options(zone, db_path, **kw)
    run_with_progress(ctx, lambda progress: run_census(options, ["probe"], progress), db_path)


@cli.command()
@click.option("--redis", "redis_url", required=True, metavar="URL",
              help="The Redis of the distributed crawl (redis://HOST[:PORT]/DB).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="output",
              show_default=True, help="Where this worker's WARC files go (under warc/).")
@click.option("--id", "worker_id", help="This worker's name, in its WARC file names "
                                         "[host-pid-random].")
@click.option("--once", is_flag=True, help="Exit after one crawl pass instead of waiting "
                                            "for the next.")
@handle_errors
def worker(redis_url: str, out_dir: str, worker_id: str | None, once: bool) -> None:
    """Crawl for the coordinator of a distributed crawl (census crawl --redis URL).

    Start any number, on any machines that reach Redis and the sites.  Each takes sites
    from Redis, writes its own WARC files under --out, and sends pages and links back to the
    coordinator; the work of a worker that dies is handed to the others.

    \b
    Example:
        census worker --redis redis://10.0.0.1/0 --out /data/census
    """
    from ..crawl.worker import work

    work(redis_url, out_dir, worker_id, once)
