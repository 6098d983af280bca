"""Ctrl-C in the dtool command line: the first stops the command, a second ends the process.

The first SIGINT raises ``KeyboardInterrupt`` as Python does by default, and is remembered: the
waits of this package then stop their transfers (and abort multipart uploads) before the command
ends. Should that take too long, a second SIGINT ends the process at once with status 130. The
handler is installed only while a command of ours (or one with queued uploads) runs, and only if
nobody else has replaced Python's own.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

#: The exit status of a process ended by SIGINT, as shells report it.
EXIT_STATUS = 130

_seen = threading.Event()


def seen() -> bool:
    """Whether this process has been interrupted."""
    return _seen.is_set()


def catch() -> bool:
    """Install the handler; return whether it was installed (now, by this call)."""
    if threading.current_thread() is not threading.main_thread():
        return False
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return False
    signal.signal(signal.SIGINT, _on_sigint)
    return True


def release() -> None:
    """Give Ctrl-C back to Python, unless it was pressed: then a second one must still end the
    process while the first is being handled (joining worker threads at exit included)."""
    if not _seen.is_set() and signal.getsignal(signal.SIGINT) is _on_sigint:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@contextmanager
def caught() -> Iterator[None]:
    """The handler for the duration of a block (see :func:`release`)."""
    installed = catch()
    try:
        yield
    finally:
        if installed:
            release()


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    if _seen.is_set():
        os._exit(EXIT_STATUS)
    _seen.set()
    raise KeyboardInterrupt
