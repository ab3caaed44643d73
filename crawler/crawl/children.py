"""The crawl process's helper processes (the analysis workers, the writer): each started
early over a socket pair, tied to the crawl process, and spoken to in the framing of
``multiprocessing.connection.Connection``.  Only the standard library: the writer and the
workers import this and start without Scrapy."""

from __future__ import annotations

import logging
import os
import signal
import socket
import struct
import subprocess
import sys

log = logging.getLogger(__name__)

Launched = tuple[subprocess.Popen[bytes], socket.socket]

HELPER_NICE = 10
"""How much nicer than the crawl process its helpers run.  The reactor is the crawl's one
thread that cannot fall behind (every request waits on it); the analysis and the writing can
lag a little (Scrapy holds the responses meanwhile), and take a core whenever the reactor
waits.  On the two-core bench this took the stage from a median 1.07x the bare spider's wall
time to 0.98x (nine rounds each, alternating); CPU is the same."""


def spawn(module: str, *args: str) -> Launched:
    """Start ``python -m module FD *args``: the child's end of a socket pair is FD, ours is
    returned with the process."""
    ours, theirs = socket.socketpair()
    with theirs:
        process = subprocess.Popen(
            [sys.executable, "-m", module, str(theirs.fileno()), *args],
            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL)
    try:  # a higher nice value needs no privilege; 19 is the most there is
        nice = min(19, os.getpriority(os.PRIO_PROCESS, 0) + HELPER_NICE)
        os.setpriority(os.PRIO_PROCESS, process.pid, nice)
    except OSError as exc:  # not Linux, or it is gone already: it runs as it is
        log.debug("cannot lower the priority of %s: %s", module, exc)
    return process, ours


def discard(launched: list[Launched]) -> None:
    """End the launched processes no crawl adopted: each reads end-of-file and exits."""
    while launched:
        process, sock = launched.pop()
        sock.close()
        reap(process)


def reap(process: subprocess.Popen[bytes], timeout: float = 5) -> None:
    """Wait for a child told to end (end-of-file, or a last message); kill it past ``timeout``."""
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def frame(data: bytes) -> bytes:
    """A message as ``Connection.send_bytes`` frames it, for ``recv_bytes`` at the other end
    (we write it ourselves, without blocking, when the pipe has room)."""
    if len(data) > 0x7FFFFFFF:
        return struct.pack("!i", -1) + struct.pack("!Q", len(data)) + data
    return struct.pack("!i", len(data)) + data


def die_with_parent(what: str) -> None:
    """Ask Linux to kill this process when its parent dies (``kill -9`` of ``census run`` or
    of the crawl process), and exit at once if the parent is already gone: an orphan would go
    on writing a run that the next writer, holding the lock, marks ``interrupted``."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the lock file still says who writes
        log.debug("cannot tie the %s to its parent", what)
    if os.getppid() == 1:  # the parent died before the request took effect
        os._exit(1)
