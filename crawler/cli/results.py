"""Commands that read and judge a census: what changed, the runs, the purposes, the labels."""

from __future__ import annotations

from pathlib import Path

import click

from .group import cli
from .options import db_option, handle_errors


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
    from ..census import census_writer
    from ..diff import compare_runs

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
    from ..db import open_census
    from ..runs import list_runs, runs_json, runs_table

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
                   "real corpus; with PATH, a labelled .jsonl file or folder (a file of "
                   "multi-page sites scores the section rule).")
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
        census classify --evaluate crawler/data/corpus/sites.jsonl
    """
    from ..classify import cross_validate, evaluate, summarize
    from ..verdicts import classify_again

    if eval_path == "cv":
        click.echo(cross_validate().format())
        return
    if eval_path:
        if not Path(eval_path).exists():
            raise click.BadParameter(f"{eval_path!r} does not exist", param_hint="--evaluate")
        click.echo(evaluate(eval_path).format())
        return
    click.echo(summarize(classify_again(db_path, run_id)))


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
    from ..verdicts import label_domain

    if not remove and not label:
        raise click.UsageError("give a LABEL, or --remove")
    domain, known = label_domain(db_path, domain, None if remove else label, note)
    if remove:
        click.echo(f"removed the label of {domain}" if known else f"{domain} had no label")
        return
    if not known:
        click.echo(f"warning: {domain} is not in the census yet; the label waits for it",
                   err=True)
    click.echo(f"{domain}: {label}")
