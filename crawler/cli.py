"""The ``census`` command: parse the arguments, call one library function, print.

Every command is a thin layer over a function that the tests call too; a ``CensusError``
becomes one line on stderr and exit status 1.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
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
        click.option(
            "--tsig",
            metavar="NAME:ALG:SECRET",
            help="TSIG key signing the zone's transfers (overrides the profile's).",
        ),
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


UNITS = {"crawl": "page", "classify": "site", "screenshots": "site"}
PLURALS = {"page": "pages", "site": "sites", "query": "queries"}


class Progress:
    """Draws the library's ``progress(step, done, total)`` callbacks for a person.

    On a terminal (``mode='bar'``) one tqdm bar per step, with its total when known; off a
    terminal (``mode='lines'``: cron, a pipe, a log file) one line when a step starts and
    then one every ``interval`` seconds: done/total, rate, ETA.  The rate is done over the
    time since the step started, and is shown only after a second, so a step that reports
    a thousand at once never claims millions per second.
    """

    def __init__(self, mode: str | None, interval: float = 30.0,
                 clock: Callable[[], float] | None = None) -> None:
        import time

        self.mode = mode
        self.interval = interval
        self.clock = clock or time.monotonic
        self.bar: Any = None
        self.step: str | None = None
        self.started = 0.0
        self.last_line = 0.0

    def __call__(self, step: str, done: int, total: int | None) -> None:
        if not self.mode:
            return
        now = self.clock()
        if step != self.step:
            self.close()
            self.step, self.started, self.last_line = step, now, now
            if self.mode == "bar":
                from tqdm import tqdm

                self.bar = tqdm(total=total, desc=step,
                                unit=PLURALS[UNITS.get(step, "query")],
                                leave=False, file=sys.stderr,
                                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}"
                                           "{postfix}]" if total else
                                "{desc}: {n_fmt} {unit} [{elapsed}{postfix}]")
            else:
                click.echo(self.line(step, done, total, now), err=True)
        if self.mode == "lines":
            if now - self.last_line >= self.interval:
                self.last_line = now
                click.echo(self.line(step, done, total, now), err=True)
            return
        if total is not None and self.bar.total != total:
            self.bar.total = total
        self.bar.n = done
        rate, eta = self.pace(done, total, now)
        self.bar.set_postfix_str(", ".join(x for x in (rate, eta and f"ETA {eta}") if x),
                                 refresh=False)
        self.bar.refresh()

    def pace(self, done: int, total: int | None, now: float) -> tuple[str, str]:
        """The rate and the time left, as text; empty until they mean something."""
        elapsed = now - self.started
        if elapsed < 1.0 or done <= 0:
            return "", ""
        per_second = done / elapsed
        unit = UNITS.get(self.step or "", "query")
        rate = f"{per_second:.1f} {unit}/s"
        if not total or done >= total:
            return rate, ""
        left = round((total - done) / per_second)
        return rate, f"{left // 60}:{left % 60:02d}"

    def line(self, step: str, done: int, total: int | None, now: float) -> str:
        unit = UNITS.get(step, "query")
        rate, eta = self.pace(done, total, now)
        text = f"{step}: {done}/{total if total else '?'} {PLURALS[unit]}"
        return text + "".join(f", {x}" for x in (rate, eta and f"ETA {eta}") if x)

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
        tsig=kw["tsig"],
        crawl=kw.get("crawl", {}),
    )


def report_run(db_path: str, run_id: int) -> str:
    """Print the outcome of a run; return its status."""
    from .db import open_census
    from .runs import run_summary, summary_line

    db = open_census(db_path)
    run = run_summary(db, run_id)
    db.close()
    click.echo(summary_line(run, db_path))
    if run.message:
        click.echo(run.message)
    return run.status


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


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGTERM (``systemctl stop``, ``timeout``) stops a run as Ctrl-C does.

    The first signal says so and raises ``KeyboardInterrupt``, which the stage turns into an
    ``interrupted`` run; later ones only repeat that it is stopping, so the run can be marked
    and the crawl flushed (within 10 s) without being cut short again.
    """
    import signal

    def again(signum: int, frame: Any) -> None:
        click.echo("still stopping…", err=True)

    def stop(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, again)
        signal.signal(signal.SIGTERM, again)
        click.echo("stopping…", err=True)
        raise KeyboardInterrupt

    before = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def run_with_progress(ctx: click.Context, fn: Callable[[Progress], int], db_path: str) -> None:
    progress = Progress(ctx.obj["progress"])
    try:
        with stop_on_signals():
            run_id = fn(progress)
    except KeyboardInterrupt:
        progress.close()
        raise click.ClickException(
            "interrupted: the run is marked 'interrupted'; continue it with census run --resume"
        ) from None
    progress.close()
    if report_run(db_path, run_id) == "failed":
        ctx.exit(1)  # for cron: a census that learned nothing is not a success


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
    from .census import STAGES, run_census
    from .resume import resumable_run, resume_census

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
    stages = list(STAGES)
    if screenshots:
        stages.insert(stages.index("crawl") + 1, "screenshots")
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
    from .census import run_stage

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
    from .census import run_census

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
    from .crawl.worker import work

    work(redis_url, out_dir, worker_id, once)


@cli.command()
@click.argument("world", default="kp")
@click.option("--version", "world_version", type=click.IntRange(1, 2), default=1,
              show_default=True, help="Version of the world (2: the re-run changes).")
@click.option("--dns-port", type=int, default=5300, show_default=True, help="DNS port.")
@click.option("--http-port", type=int, default=8080, show_default=True, help="HTTP port.")
@click.option("--https-port", type=int, default=8443, show_default=True, help="HTTPS port.")
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
    from .lab import Lab, load_world, serve_until_stopped

    the_lab = Lab.with_default_ports(load_world(world, world_version), dns_port, http_port,
                                     https_port)
    serve_until_stopped(the_lab, lambda text: click.echo(text) or sys.stdout.flush())


@cli.command()
@click.argument("runs", nargs=-1, type=int, metavar="[RUN_A RUN_B]")
@db_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json"]),
    default="text",
    show_default=True,
    help="Report format; json keys are documented in crawler/diff/formats.py.",
)
@click.option("--zone", help="Compare the last two finished runs of this zone.")
@click.option("--force", is_flag=True,
              help="Count failed and interrupted runs as finished too.")
@handle_errors
def diff(runs: tuple[int, ...], db_path: str, fmt: str, zone: str | None, force: bool) -> None:
    """What changed between two runs, also written into the changes table.

    With no RUN, the last two finished (complete or partial) runs of the zone; with one, that
    run and the finished run before it; the older run comes first.  Failed, interrupted and
    running runs are never a silent baseline.

    \b
    Example:
        census diff                      # the last two finished runs
        census diff 3 5 --format markdown
    """
    from .census import census_writer
    from .diff import compare_runs

    if len(runs) > 2:
        raise click.UsageError("give at most two runs: RUN_A RUN_B")
    run_a, run_b = (None, None, *runs)[-2:]
    with census_writer(db_path, create=False) as db:
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


@cli.command("classify")
@db_option
@click.option("--run", "run_id", type=int, help="The run to classify (default: the latest).")
@click.option("--evaluate", "eval_path", is_flag=False, flag_value="cv", default=None,
              metavar="[PATH]",
              help="Instead, score the classifier: alone, grouped cross-validation on the "
                   "real corpus; with PATH, a labelled .jsonl file or folder.")
@handle_errors
def classify_command(db_path: str, run_id: int | None, eval_path: str | None) -> None:
    """Give every site of a run a purpose, a confidence and the evidence.

    Human labels (census label) win over the classifier.  With --evaluate alone, run a
    grouped cross-validation on the real corpus (no site in both halves) and print macro-F1
    with its bootstrap interval, per-label precision and recall, the confusion matrix and
    the calibration table; with --evaluate PATH, score a held-out labelled set.

    \b
    Example:
        census classify --db output/census.db
        census classify --evaluate
        census classify --evaluate crawler/data/corpus/eval.jsonl
    """
    from .census import census_writer
    from .classify import classify_run, cross_validate, evaluate, summarize

    if eval_path == "cv":
        click.echo(cross_validate().format())
        return
    if eval_path:
        if not Path(eval_path).exists():
            raise click.BadParameter(f"{eval_path!r} does not exist", param_hint="--evaluate")
        click.echo(evaluate(eval_path).format())
        return
    from .db import get_run
    from .diff import refresh_changes

    with census_writer(db_path, create=False) as db:
        results = classify_run(db, run_id)
        refresh_changes(db, [get_run(db, run_id)["id"]])
    click.echo(summarize(results))


@cli.command("label")
@db_option
@click.argument("domain")
@click.argument("label", required=False)
@click.option("--note", help="Why: shown in the evidence.")
@click.option("--remove", is_flag=True, help="Remove the human label of DOMAIN.")
@handle_errors
def label_command(
    db_path: str, domain: str, label: str | None, note: str | None, remove: bool
) -> None:
    """Set the purpose of DOMAIN by hand; it overrides the classifier in every run.

    \b
    Example:
        census label kass.org.kp education_research --note "Academy of Sciences"
        census label kass.org.kp --remove
    """
    from .census import census_writer
    from .classify import labelled_runs, remove_label, set_label
    from .diff import refresh_changes
    from .names import normalize_name

    if not remove and not label:
        raise click.UsageError("give a LABEL, or --remove")
    name = normalize_name(domain)
    if name is None:
        raise click.ClickException(f"invalid domain name {domain!r}")
    domain = name
    with census_writer(db_path) as db:
        if remove:
            existed = remove_label(db, domain)
            refresh_changes(db, labelled_runs(db, domain))
            click.echo(f"removed the label of {domain}" if existed
                       else f"{domain} had no label")
            return
        known = set_label(db, domain, label, note)
        refresh_changes(db, labelled_runs(db, domain))
    if not known:
        click.echo(f"warning: {domain} is not in the census yet; the label waits for it",
                   err=True)
    click.echo(f"{domain}: {label}")


@cli.command("serve")
@db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8001, show_default=True,
              help="Port to listen on.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Where the screenshots are [default: the --out the latest run recorded].")
@click.option("--immutable", is_flag=True,
              help="Open a finished census immutable (faster; never while a run writes).")
@click.option("--open", "open_browser", is_flag=True, help="Open a browser on it.")
@handle_errors
def serve_command(db_path: str, host: str, port: int, out_dir: str | None, immutable: bool,
                  open_browser: bool) -> None:
    """Browse the census in Datasette, read-only, with its descriptions and queries.

    Needs Datasette: pip install 'cctld-census[serve]'.

    \b
    Example:
        census serve --db output/census.db --port 8001
    """
    from .serve import serve

    serve(db_path, host, port, out_dir, immutable=immutable, open_browser=open_browser)


@cli.command("export")
@db_option
@click.option("--wacz", "run_id", type=int, required=True, metavar="RUN",
              help="Package this run's WARC files as a WACZ.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Where the run's warc/ folder is [default: the run's --out].")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="The WACZ file [default: OUT/wacz/census-runNNNNN.wacz].")
@click.option("--validate", is_flag=True, help="Run wacz validate on the package.")
@handle_errors
def export_command(db_path: str, run_id: int, out_dir: str | None, output: str | None,
                   validate: bool) -> None:
    """Package a run's WARCs, CDXJ index, pages.jsonl and datapackage.json as one WACZ, for
    ReplayWeb.page and pywb (census run does this after the crawl).

    \b
    Example:
        census export --wacz 3
    """
    from .export import export_wacz, validate_wacz

    result = export_wacz(db_path, run_id, out_dir, output)
    click.echo(result.message())
    if validate:
        ok, said = validate_wacz(result.path)
        click.echo(said.strip().splitlines()[-1] if said.strip() else "validated")
        if not ok:
            raise click.ClickException("wacz validate failed")


@cli.command("report")
@db_option
@click.option("--run", "run_id", type=int, help="The run to report [default: the latest].")
@click.option("--out", "out_path", type=click.Path(dir_okay=False),
              help="The HTML file [default: report-run<ID>.html beside --db].")
@click.option("--screenshots", "shots_dir", type=click.Path(file_okay=False),
              help="Folder holding screenshots/ [default: the --out the run recorded].")
@handle_errors
def report_command(db_path: str, run_id: int | None, out_path: str | None,
                   shots_dir: str | None) -> None:
    """Write one self-contained HTML report of a run: numbers, sites, charts, changes.

    \b
    Example:
        census report --run 3 --out report.html
    """
    from .report import write_report

    path = write_report(db_path, run_id, out_path, shots_dir)
    click.echo(f"wrote {path}")
