"""A floor under the rate of a response body: a trickle ends in one line instead of never.

botocore's read timeout only fires when *no* byte arrives for ``DTOOL_S3_READ_TIMEOUT``
seconds, so a server that sends one byte a second holds a download open for days. A
:class:`PacedBody` counts what each read brings; one watchdog thread, started with the first
paced body, looks at every body being read twice a second and cuts one that moved fewer than
``DTOOL_S3_MIN_RATE`` bytes a second over a window of ``DTOOL_S3_READ_TIMEOUT`` seconds: it
shortens the socket's timeout (botocore's ``set_socket_timeout``; closing the body from another
thread would not stop a read in progress), so the read in progress fails with the next piece of
the trickle, and :meth:`PacedBody.read` raises the one-line
:class:`~dtool_s3_core.errors.TransferFailed` instead.

Uploads need no watchdog: botocore sends a body in blocks, each of which must leave within the
read timeout (see :class:`.transport.BotocoreBodies`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

from .. import errors

#: How often the watchdog looks at the bodies being read, in seconds.
_TICK = 0.5
#: The socket timeout that cuts a body: the next read of a trickle finds nothing in time.
_CUT = 0.001


class PacedBody:
    """A botocore response body, read under the floor ``min_rate`` over ``window`` seconds.

    Use it as a context manager around the reads: only then is it watched.

    :param setting: the floor's setting as users name it, e.g. ``DTOOL_S3_MIN_RATE_<bucket>``
    """

    def __init__(self, body: Any, min_rate: int, window: float, where: str, setting: str) -> None:
        self._body = body
        self._min_rate = min_rate
        self._window = window
        self._where = where
        self._setting = setting
        self._started = time.monotonic()
        # Only the reader adds to the count, only the watchdog moves the mark: no lock needed.
        self._moved = 0
        self._mark = 0
        self._verdict: str | None = None

    def __enter__(self) -> PacedBody:
        if self._min_rate > 0:
            _WATCHDOG.watch(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        _WATCHDOG.forget(self)

    def read(self, amount: int) -> bytes:
        """Read up to ``amount`` bytes (fewer only at the end of the body).

        :raises TransferFailed: if the watchdog cut the body for moving too slowly
        """
        try:
            chunk: bytes = self._body.read(amount)
        except Exception:
            # Cutting the connection makes the blocked read fail in a way of the HTTP library's
            # choosing; the verdict is the error that explains it.
            if self._verdict is not None:
                raise errors.TransferFailed(self._verdict) from None
            raise
        if self._verdict is not None:
            raise errors.TransferFailed(self._verdict)
        self._moved += len(chunk)
        return chunk

    def close(self) -> None:
        self._body.close()

    def judge(self, now: float) -> bool:
        """Cut the body if its last window moved too little, and say so; else go on watching."""
        elapsed = now - self._started
        if elapsed < self._window:
            return False
        moved = self._moved - self._mark
        self._mark, self._started = self._mark + moved, now
        if moved >= self._min_rate * elapsed:
            return False
        self._verdict = (
            f"{self._where} came at {moved / elapsed:.0f} bytes a second over the last "
            f"{elapsed:.0f} s, below the floor of {self._min_rate}: check the network, or lower "
            f"{self._setting} (bytes a second; 0 turns the floor off)"
        )
        # Whatever the socket says, the verdict stands and the reader reports it.
        with contextlib.suppress(Exception):
            self._body.set_socket_timeout(_CUT)
        return True


class _Watchdog:
    """The one thread that judges every paced body being read, started with the first."""

    def __init__(self) -> None:
        self._bodies: set[PacedBody] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def watch(self, body: PacedBody) -> None:
        with self._lock:
            self._bodies.add(body)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._patrol, name="dtool-s3-pace", daemon=True
                )
                self._thread.start()

    def forget(self, body: PacedBody) -> None:
        with self._lock:
            self._bodies.discard(body)

    def _patrol(self) -> None:
        while True:
            time.sleep(_TICK)
            with self._lock:
                bodies = list(self._bodies)
            now = time.monotonic()
            for body in bodies:
                if body.judge(now):
                    self.forget(body)


_WATCHDOG = _Watchdog()
