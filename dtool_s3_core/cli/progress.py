"""A progress bar on a terminal (drawn by rich), fed from the transfer engine's worker threads.

Workers only add to counters under a lock; a thread of this module reads them a few times a
second and has rich redraw the bar, so a copy of many small items costs no terminal output per
item and a large item still shows it moving. rich is imported only when a bar is drawn: ``dtool``
starts without it.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import RenderableType

_REDRAW_SECONDS = 0.2
#: The narrowest bar worth drawing; on a terminal too narrow for it and the numbers, none is.
_MIN_BAR = 10


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
    """Implements the copy engine's ``Progress``; draws on stderr only when ``enabled``.

    The bar is transient: when the block ends (done, failed or interrupted) rich draws the
    totals one last time and erases the line, so what the command prints next starts clean.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._lock = threading.Lock()
        self._items = 0
        self._size = 0
        self._skipped: int | None = None
        self._done_items = 0
        self._done_bytes = 0
        self._bar: _Redrawing | None = None

    def __enter__(self) -> ByteProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def at_destination(self) -> tuple[int, int] | None:
        """(items there now, items of the dataset), None before the copy started moving items."""
        with self._lock:
            if self._skipped is None:
                return None
            return self._skipped + self._done_items, self._skipped + self._items

    def counts(self) -> tuple[int, int, int, int]:
        """(bytes done, bytes to move, items done, items to move)."""
        with self._lock:
            done = min(self._done_bytes, self._size)
            return done, self._size, self._done_items, self._items

    def start(self, items: int, size: int, skipped: int) -> None:
        with self._lock:
            self._items, self._size, self._skipped = items, size, skipped
        if self.enabled and self._bar is None:
            try:
                live = _live(self)
            except ImportError:  # rich comes with the cli extra: without it, no bar
                return
            # Kept before it starts: Ctrl-C while it starts must still find it to erase.
            self._bar = _Redrawing(live)
            self._bar.start()

    def advance(self, nbytes: int) -> None:
        with self._lock:
            self._done_bytes += nbytes

    def item_done(self) -> None:
        with self._lock:
            self._done_items += 1

    def close(self) -> None:
        """Stop redrawing: draw the totals once more, then erase the bar."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


class _Redrawing:
    """Redraws a ``rich.live.Live`` from a thread of its own, at once and then a few times a
    second, until stopped; then the Live draws its last frame and erases it.

    A Live that refreshes itself draws its first frame in the thread that starts it, the main
    one, where Ctrl-C raises KeyboardInterrupt; raised in the middle of a write, it leaves the
    Console's buffer half done (the next frame repeats the last, or nothing is written again).
    So the main thread draws only once the copy has ended (the last frame): a second Ctrl-C
    ends the process without raising.
    """

    def __init__(self, live: Any) -> None:
        self._live = live
        self._logs: list[tuple[logging.StreamHandler[Any], Any]] = []
        self._started = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dtool-s3-progress", daemon=True)

    def start(self) -> None:
        stderr = sys.stderr
        self._live.start()
        # dtool logs warnings to the stderr it found at start (logging.basicConfig); while the
        # bar is drawn they go through rich's stand-in, which prints them above the bar.
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is stderr:
                self._logs.append((handler, handler.setStream(sys.stderr)))
        self._thread.start()
        # The first frame only once this thread is back to the copy: Ctrl-C as it shows must
        # not land in the middle of starting a thread (a KeyboardInterrupt there breaks
        # threading's own locks).
        self._started.set()

    def stop(self) -> None:
        self._stopped.set()
        self._started.set()  # in case Ctrl-C came before start() could say so
        if self._thread.is_alive():
            self._thread.join()
        self._live.stop()
        for handler, stream in self._logs:
            handler.setStream(stream)

    def _run(self) -> None:
        self._started.wait()
        while not self._stopped.is_set():
            self._live.refresh()
            self._stopped.wait(_REDRAW_SECONDS)


def _live(counters: ByteProgress) -> Any:
    """A ``rich.live.Live`` that draws ``counters`` on stderr when refreshed."""
    from rich.console import Console
    from rich.live import Live
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    from rich.table import Column

    class _Console(Console):
        def show_cursor(self, show: bool = True) -> bool:
            # Keep the cursor visible: a second Ctrl-C ends the process at once (os._exit),
            # which would leave it hidden in the user's shell.
            return True

    def cell(width: int) -> Column:
        # Fixed widths, of the widest text each column shows: the numbers stay in place as
        # they grow, and whether a layout fits is known from the widths alone.
        return Column(width=width, no_wrap=True)

    total_items = counters.counts()[3]
    percent = TaskProgressColumn(table_column=cell(4))  # "100%"
    moved = DownloadColumn(table_column=cell(14))  # "999.9/999.9 MB"
    items = TextColumn("{task.fields[items]}", table_column=cell(len(f"{total_items}" * 2) + 7))
    rate = TransferSpeedColumn(table_column=cell(11))  # "999 bytes/s"
    eta = (TextColumn("ETA", table_column=cell(3)), TimeRemainingColumn(table_column=cell(8)))
    # From the fullest to the barest, each without what matters least; a bar is drawn in
    # front where there is room for one beside the numbers.
    layouts = ((percent, moved, items, rate, *eta), (percent, moved, items, *eta), (percent, items))
    bar = BarColumn(bar_width=None, table_column=Column(ratio=1, no_wrap=True))

    def fitting(width: int) -> tuple[Any, ...]:
        for numbers in layouts:
            needed = sum(column.get_table_column().width or 0 for column in numbers)
            needed += len(numbers) - 1  # one space between columns
            if needed + 1 + _MIN_BAR <= width:
                return (bar, *numbers)
            if needed <= width:
                return numbers
        return layouts[-1]

    console = _Console(stderr=True)
    # rich's Progress keeps the task (its speed samples give the rate and the ETA) and renders
    # the columns; the Live below draws it, reading the counters before each frame.
    model = Progress(console=console, auto_refresh=False, expand=True)
    # Nothing to measure in bytes (empty items only): an indeterminate bar.
    task = model.add_task("", total=counters.counts()[1] or None, items="")

    def frame() -> RenderableType:
        done, _, items_done, _ = counters.counts()
        model.update(task, completed=done, items=f"{items_done}/{total_items} items")
        model.columns = fitting(console.width)  # every frame: the terminal may be resized
        model.expand = model.columns[0] is bar  # the bar takes the room the numbers leave
        return model.make_tasks_table(model.tasks)

    return Live(
        console=console,
        get_renderable=frame,
        auto_refresh=False,  # see _Redrawing
        transient=True,
        # stdout may be a pipe (uri=$(dtool s3 cp ...)): what goes there must stay there;
        # what goes to stderr (a warning) is printed above the bar.
        redirect_stdout=False,
        redirect_stderr=True,
    )
