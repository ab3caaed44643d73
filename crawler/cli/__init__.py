"""The ``census`` command: parse the arguments, call one library function, print.

Every command is a thin layer over a function that the tests call too; a ``CensusError``
becomes one line on stderr and exit status 1.  The group and its logging are in
:mod:`.group`, the options shared by several commands in :mod:`.options`, the progress bar and
the stopping of a run in :mod:`.progress`; the commands by what they are for: taking a census
(:mod:`.stages`), reading and judging its results (:mod:`.results`), serving and writing it
for people (:mod:`.outputs`).
"""

from . import outputs, results, stages  # noqa: F401 (each adds its commands to the group)
from .group import cli
from .progress import Progress

__all__ = ["Progress", "cli"]
