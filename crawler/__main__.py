"""``python -m crawler`` is the ``census`` command."""

from crawler.cli import cli

if __name__ == "__main__":
    cli(prog_name="census")
