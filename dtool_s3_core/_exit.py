"""Process-exit duties: flush background uploads, and one-line errors in the dtool CLI.

``dtool add item`` returns as soon as the upload is queued, so queued uploads are drained when
the interpreter exits; a failure then ends the process with status 1 and one line on stderr,
never a silent loss. In the dtool command line, errors of this package, and a local input file that
is not UTF-8, are printed as one line instead of a traceback (set ``DTOOL_S3_TRACEBACK=1`` to see
it).
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import weakref
from types import TracebackType
from typing import Protocol

from .errors import DtoolS3Error


class Drainable(Protocol):
    """Background work that a barrier waits for, raising its failures."""

    def drain(self) -> None: ...


logger = logging.getLogger(__name__)
_queues: weakref.WeakSet[Drainable] = weakref.WeakSet()
_registered = threading.Event()
# Set once the CLI has printed its one error line: failures of uploads still queued at exit are
# then part of the same failure, and a second line would only bury the first.
_reported = threading.Event()


def track_queue(queue: Drainable) -> None:
    """Drain ``queue`` at interpreter exit if it still holds work."""
    _queues.add(queue)
    if not _registered.is_set():
        _registered.set()
        atexit.register(_drain_at_exit)


def wait_for_uploads() -> None:
    """Wait until every upload this process queued has landed; raise the first failure.

    ``ProtoDataSet.put_item`` returns once an upload is queued; freezing waits for them, and so
    does interpreter exit. A script that adds items without freezing calls this to know.
    """
    for queue in list(_queues):
        queue.drain()


def _drain_at_exit() -> None:
    for queue in list(_queues):
        try:
            queue.drain()
        except BaseException as exc:
            if not _reported.is_set():
                sys.stderr.write(f"Error: upload failed: {exc}\n")
            sys.stderr.flush()
            sys.stdout.flush()
            os._exit(1)


def _is_dtool_cli() -> bool:
    argv = getattr(sys, "argv", None) or [""]
    return bool(os.path.basename(str(argv[0])) == "dtool")


def install_cli_excepthook() -> None:
    """In the dtool CLI, print DtoolS3Error (and its causes) as one line, exit status 1."""
    if not _is_dtool_cli() or os.environ.get("DTOOL_S3_TRACEBACK"):
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
