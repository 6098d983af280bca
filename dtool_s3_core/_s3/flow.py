"""Flow control for item bodies: a byte budget for memory, progress that counts each byte once."""

from __future__ import annotations

import threading
from collections.abc import Callable

from ..config import MiB, S3Config

#: Called with the byte count of each part, chunk or whole body as it is sent or received.
OnBytes = Callable[[int], None]


class ByteBudget:
    """Bounds the bytes of file content held in memory at once, across all uploads of a broker.

    A buffer larger than the whole budget may still go when nothing else is held; otherwise it
    would wait forever.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._used = 0
        self._changed = threading.Condition()

    def acquire(self, size: int) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._used == 0 or self._used + size <= self.limit)
            self._used += size

    def release(self, size: int) -> None:
        with self._changed:
            self._used -= size
            self._changed.notify_all()


def memory_budget(config: S3Config) -> ByteBudget:
    """The budget for one broker: 8 parts, and at least 128 MiB so small files flow freely."""
    return ByteBudget(max(8 * config.part_size, 128 * MiB))


def report(on_bytes: OnBytes | None, count: int) -> None:
    """Tell ``on_bytes`` of ``count`` more bytes, if there is anyone to tell and anything to say."""
    if on_bytes is not None and count:
        on_bytes(count)


class HighWater:
    """Tells ``on_bytes`` each byte of one object once, however many attempts move it.

    A retried attempt starts again at byte 0 (:func:`.retry.retrying`, awscrt's own retries);
    counting it again would push a progress bar past 100 %. Callers say how far an attempt has
    got; only what lies beyond the furthest point so far is reported. Parts of one attempt
    finish on several threads, so both ways of saying it are thread-safe.
    """

    def __init__(self, on_bytes: OnBytes | None) -> None:
        self._on_bytes = on_bytes
        self._told = 0
        self._lock = threading.Lock()

    def reached(self, position: int) -> None:
        """The current attempt has moved the object's bytes up to ``position``."""
        with self._lock:
            beyond, self._told = position - self._told, max(self._told, position)
        if beyond > 0:
            report(self._on_bytes, beyond)

    def attempt(self) -> OnBytes:
        """A counter for one new attempt: call it with each byte count the attempt moves."""
        moved = 0
        lock = threading.Lock()

        def count(nbytes: int) -> None:
            nonlocal moved
            with lock:
                moved += nbytes
                position = moved
            self.reached(position)

        return count
