"""A byte progress line for a terminal, fed from the transfer engine's worker threads.

Workers only add to counters; one thread redraws the line a few times a second, so a copy of
many small items costs no terminal output per item and a large item still shows it moving.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

_WIDTH = 24
_REDRAW_SECONDS = 0.2


def size_text(nbytes: float) -> str:
    """``nbytes`` in decimal units (B, kB, MB, GB, TB), as throughput is shown."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(nbytes) < 1000:
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1000
    return f"{nbytes:.1f} TB"


def duration_text(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class ByteProgress:
    """Implements the copy engine's ``Progress``; draws on ``stream`` only when ``enabled``."""

    def __init__(self, enabled: bool, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self._stream = stream or sys.stderr
        self._lock = threading.Lock()
        self._items = 0
        self._size = 0
        self._skipped: int | None = None
        self._done_items = 0
        self._done_bytes = 0
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> ByteProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def moved(self) -> int:
        with self._lock:
            return self._done_bytes

    def at_destination(self) -> tuple[int, int] | None:
        """(items there now, items of the dataset), None before the copy started moving items."""
        with self._lock:
            if self._skipped is None:
                return None
            return self._skipped + self._done_items, self._skipped + self._items

    def start(self, items: int, size: int, skipped: int) -> None:
        with self._lock:
            self._items, self._size, self._skipped = items, size, skipped
            self._started = time.monotonic()
        if self.enabled and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="dtool-s3-progress", daemon=True)
            self._thread.start()

    def advance(self, nbytes: int) -> None:
        with self._lock:
            self._done_bytes += nbytes

    def item_done(self) -> None:
        with self._lock:
            self._done_items += 1

    def close(self) -> None:
        """Stop redrawing and clear the line."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
            self._stream.write("\r\x1b[K")
            self._stream.flush()

    def _run(self) -> None:
        while not self._stop.wait(_REDRAW_SECONDS):
            self._stream.write("\r" + self.line() + "\x1b[K")
            self._stream.flush()

    def line(self) -> str:
        """The progress line: bar, bytes, items, throughput, ETA."""
        with self._lock:
            done, size = min(self._done_bytes, self._size), self._size
            items, total_items = self._done_items, self._items
            elapsed = time.monotonic() - self._started
        fraction = done / size if size else 1.0
        filled = int(fraction * _WIDTH)
        bar = "#" * filled + "-" * (_WIDTH - filled)
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = duration_text((size - done) / rate) if rate > 0 else "?"
        return (
            f"[{bar}] {fraction:4.0%} {size_text(done)}/{size_text(size)}  "
            f"{items}/{total_items} items  {size_text(rate)}/s  ETA {eta}"
        )
