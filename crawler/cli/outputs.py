"""Commands that serve and write the census for people (Datasette, a WACZ, an HTML report),
and the lab, the offline replica a run can be pointed at."""

from __future__ import annotations

import sys

import click

from .group import cli
from .options import db_option, handle_errors


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
    from ..lab import Lab, load_world, serve_until_stopped

    the_lab = Lab.with_default_ports(load_world(world, world_version), dns_port, http_port,
                                     https_port)
    serve_until_stopped(the_lab, lambda text: click.echo(text) or sys.stdout.flush())


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
    from ..serve import serve

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
    from ..export import export_wacz, validate_wacz

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
    from ..report import write_report

    path = write_report(db_path, run_id, out_path, shots_dir)
    click.echo(f"wrote {path}")
