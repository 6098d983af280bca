"""Barriers for background uploads, and one-line errors in the dtool CLI.

``ProtoDataSet.put_item`` returns as soon as an upload is queued. Its failure is raised at the
next barrier: freezing, :func:`wait_for_uploads`, or, in the dtool command line, the end of the
command (:func:`drain_when` lets :mod:`..cli._hooks` put the barrier there, so the command exits 1
with one line). What is still queued when the interpreter exits is drained then; a failure there
is logged as one line (on stderr when logging is not configured). An exit handler cannot change
the exit status, and this module never ends the process itself: the caller's other exit handlers
still run.
Nothing here is installed at import: the dtool CLI's hooks come from :mod:`..cli._hooks`.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import Protocol

from ..errors import DtoolS3Error


class Drainable(Protocol):
    """Background work that a barrier waits for, raising its failures, or stops (Ctrl-C)."""

    def drain(self) -> None: ...

    def interrupt(self) -> None: ...


logger = logging.getLogger(__name__)
_queues: weakref.WeakSet[Drainable] = weakref.WeakSet()
_registered = threading.Event()
# Set once the CLI has printed its one error line: failures of uploads still queued at exit are
# then part of the same failure, and a second line would only bury the first.
_reported = threading.Event()
_barriers: list[Callable[[Callable[[], None]], None]] = []


def track_queue(queue: Drainable) -> None:
    """Drain ``queue`` at the caller's barrier, or at interpreter exit if it still holds work."""
    _queues.add(queue)
    for barrier in _barriers:
        barrier(wait_for_uploads)
    if not _registered.is_set():
        _registered.set()
        atexit.register(_drain_at_exit)


def drain_when(barrier: Callable[[Callable[[], None]], None]) -> None:
    """Hand :func:`wait_for_uploads` to ``barrier`` whenever a queue starts being tracked.

    The dtool CLI passes a function that runs it when the current command ends.
    """
    _barriers.append(barrier)


def wait_for_uploads() -> None:
    """Wait until every upload this process queued has landed; raise the first failure.

    ``ProtoDataSet.put_item`` returns once an upload is queued; freezing waits for them, and so
    does interpreter exit. A script that adds items without freezing calls this to know.
    """
    for queue in list(_queues):
        queue.drain()


def interrupt_queues() -> None:
    """Stop the background work of every tracked queue, for a caller that was interrupted
    (Ctrl-C) outside this package's waits: queued transfers never start, running ones stop."""
    for queue in list(_queues):
        queue.interrupt()


def _drain_at_exit() -> None:
    for queue in list(_queues):
        try:
            queue.drain()
        except Exception as exc:
            # Unconfigured logging still writes errors to stderr (logging.lastResort).
            if not _reported.is_set():
                _reported.set()
                logger.error("Error: upload failed: %s", exc)


def install_cli_excepthook() -> None:
    """Print DtoolS3Error (and its causes) as one line, exit status 1: for the dtool CLI only."""
    if os.environ.get("DTOOL_S3_TRACEBACK"):
        return
    previous = sys.excepthook

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if isinstance(exc, DtoolS3Error):
            _reported.set()
            sys.stderr.write(f"Error: {exc}\n")
            return
        # dtool's commands read local files (e.g. the README of 'dtool readme write') as text and
        # would end in a traceback; this package turns bad bytes from S3 into DtoolS3Error itself,
        # so a decoding error that gets here is always about a local input file.
        if isinstance(exc, UnicodeDecodeError):
            _reported.set()
            sys.stderr.write(
                f"Error: the input file is not {exc.encoding.upper()} text ({exc.reason} at byte "
                f"{exc.start}): save it as UTF-8 and try again\n"
            )
            return
        previous(kind, exc, tb)

    sys.excepthook = hook
