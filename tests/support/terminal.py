"""A command run on a pseudo terminal of a given width, and a screen that replays what it wrote.

:class:`Screen` understands what a progress bar writes (text, carriage return, newline, erase in
line, cursor up, colours) and fails on any other control sequence, so a test sees what a user's
terminal would show: which rows remain at the end, what each erased row held, and whether any
row ran past the right margin (a terminal would wrap it onto the next row).
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import termios
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

_CONTROL = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])|([\r\n])")


@dataclass
class Screen:
    """The rows of a terminal ``width`` columns wide, fed what a program wrote to it."""

    width: int
    rows: list[list[str]] = field(default_factory=lambda: [[]])
    #: What each erased row held just before it was erased (a frame of a progress bar).
    erased: list[str] = field(default_factory=list)
    #: Rows written past the right margin.
    overflows: list[str] = field(default_factory=list)
    _row: int = 0
    _column: int = 0

    def feed(self, text: str) -> None:
        position = 0
        for match in _CONTROL.finditer(text):
            self._write(text[position : match.start()])
            position = match.end()
            params, final, char = match.groups()
            if char == "\r":
                self._column = 0
            elif char == "\n":
                self._move_to(self._row + 1)
            elif final == "m":  # colours
                pass
            elif final == "K":
                self._erase(params or "0")
            elif final == "A":
                self._move_to(max(0, self._row - int(params or "1")))
            else:
                raise AssertionError(f"unexpected control sequence {match.group()!r}")
        self._write(text[position:])

    def text(self) -> list[str]:
        """The rows as they read now, trailing blanks dropped."""
        lines = ["".join(row).rstrip() for row in self.rows]
        while lines and not lines[-1]:
            lines.pop()
        return lines

    def _write(self, text: str) -> None:
        for char in text:
            if self._column >= self.width:
                self.overflows.append("".join(self.rows[self._row]))
                self._move_to(self._row + 1)
                self._column = 0
            row = self.rows[self._row]
            row.extend(" " * (self._column + 1 - len(row)))
            row[self._column] = char
            self._column += 1

    def _erase(self, mode: str) -> None:
        row = self.rows[self._row]
        if mode == "2":
            if "".join(row).strip():
                self.erased.append("".join(row).rstrip())
            row.clear()
        elif mode == "0":
            del row[self._column :]
        else:
            raise AssertionError(f"unexpected erase mode {mode!r}")

    def _move_to(self, row: int) -> None:
        while len(self.rows) <= row:
            self.rows.append([])
        self._row = row


@dataclass
class TerminalRun:
    returncode: int
    #: What the program wrote to the terminal.
    output: str
    #: What it wrote to stderr when that was a pipe, not the terminal.
    stderr: str


def run_on_terminal(
    argv: Sequence[str],
    env: Mapping[str, str],
    columns: int,
    *,
    stderr_on_terminal: bool = True,
    watch: Callable[[str, subprocess.Popen[bytes]], bool] | None = None,
) -> TerminalRun:
    """Run ``argv`` with stdin and stdout (and stderr, unless told) on a pseudo terminal
    ``columns`` wide (as the terminal tells and as ``COLUMNS`` says); ``watch`` is called
    with the output so far and the process after each read until it returns True."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    process = subprocess.Popen(
        list(argv),
        stdin=follower,
        stdout=follower,
        stderr=follower if stderr_on_terminal else subprocess.PIPE,
        env={**env, "COLUMNS": str(columns)},
    )
    os.close(follower)
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: every end of the terminal's other side is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
        if watch is not None and watch(b"".join(chunks).decode(errors="replace"), process):
            watch = None
    os.close(leader)
    stderr = process.stderr.read().decode() if process.stderr is not None else ""
    returncode = process.wait(timeout=300)
    return TerminalRun(returncode, b"".join(chunks).decode(errors="replace"), stderr)
