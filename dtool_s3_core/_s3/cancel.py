"""Stopping an operation's transfers (Ctrl-C): a flag each body transfer checks as it moves.

The flag belongs to one :class:`~.client.S3Client`, that is to one dataset object: the thread
that sees the ``KeyboardInterrupt`` raises it, and every transfer of that client stops at its
next chunk or part (an awscrt request is cancelled within :data:`POLL_SECONDS`). Nothing here is
process-wide, and the flag stays raised: an interrupted dataset object moves no more bodies.
"""

from __future__ import annotations

import threading

#: How often a transfer that waits on awscrt looks at the flag.
POLL_SECONDS = 0.1


class Cancelled(BaseException):
    """The transfer stopped because its operation was interrupted.

    Raised in worker threads only; the thread that was interrupted raises its
    ``KeyboardInterrupt`` once they are done. Like ``asyncio.CancelledError`` it is no
    ``Exception``: botocore would wrap one in an error it retries, and no ``except Exception``
    of a library in between may take it for a failure.
    """


class Cancel:
    """The stop flag of one client's transfers."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` once the flag is raised."""
        if self._event.is_set():
            raise Cancelled("the transfer was interrupted")
