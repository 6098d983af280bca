"""Local files to upload: readable regular files only, refused up front and opened safely.

A FIFO blocks its reader until something writes to it, a device may never end, a socket or a
directory has no content to store, and an unreadable file or a broken symbolic link would fail
halfway through a copy. So every local source is checked before anything is uploaded, and each
refusal is one line naming the file and what to do (issue 19). Files are never opened with a
plain ``open()``: :func:`open_local` looks at what a path is before opening it, opens without
blocking and checks what it opened, so a file swapped for a FIFO in between cannot hang an
upload either.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .. import errors

#: How many refused files one message names besides the first.
NAMED_MORE = 3

_SPECIAL = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)
_SPECIAL_FIX = "dtool items are regular files: replace it with one, or leave it out"
_UNREADABLE_FIX = "make it readable (e.g. chmod u+r), or leave it out"
_LINK_FIX = "point the link at a regular file, or remove it"
# O_NONBLOCK: opening a FIFO that was swapped in after the check returns at once instead of
# waiting for a writer; O_NOCTTY: a terminal device never becomes the controlling terminal.
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


@dataclass(frozen=True)
class Problem:
    """Why a local file cannot be uploaded, and what to do about it."""

    path: Path
    what: str
    fix: str
    missing: bool = False


class _Refused(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.what)
        self.problem = problem


def open_local(path: str | os.PathLike[str]) -> BinaryIO:
    """Open a local file to upload; only a readable regular file is opened, and never blocks.

    :raises ObjectNotFound: if there is no such file
    :raises LocalFileError: if it is no regular file (FIFO, device, socket, directory), cannot
                            be read, or is a dangling or looping symbolic link
    """
    try:
        fd = _open(Path(path))
    except _Refused as exc:
        raise refusal([exc.problem]) from exc.__cause__
    # Only the open had to be non-blocking; reads of a regular file never are.
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def problems_of(paths: Iterable[Path]) -> list[Problem]:
    """Return what keeps each of ``paths`` from being uploaded (empty: all can be)."""
    found = []
    for path in paths:
        try:
            os.close(_open(path))
        except _Refused as exc:
            found.append(exc.problem)
    return found


def check_local_files(paths: Iterable[Path]) -> None:
    """Refuse, before any upload, files that :func:`open_local` would refuse (see there)."""
    found = problems_of(paths)
    if found:
        raise refusal(found)


def list_tree(root: Path) -> tuple[dict[str, Path], list[Problem]]:
    """Return {relpath: path} of the files below ``root``, and the directories that hide some.

    Symbolic links to files are listed (and followed when read); a symbolic link to a directory
    or a directory that cannot be read is a problem, so that nothing below ``root`` is left out
    without a word.
    """
    files: dict[str, Path] = {}
    found: list[Problem] = []

    def unreadable(exc: OSError) -> None:
        fix = "make it readable (e.g. chmod u+rx), or leave it out"
        reason = str(exc.strerror or exc)
        what = f"is a directory that cannot be read ({reason[:1].lower()}{reason[1:]})"
        found.append(Problem(Path(exc.filename or root), what, fix))

    for top, dirnames, filenames in os.walk(root, onerror=unreadable):
        for name in dirnames:
            path = Path(top, name)
            if path.is_symlink():
                what = "is a symbolic link to a directory, which is not followed"
                fix = "give that directory its own dataset, or replace the link with a copy"
                found.append(Problem(path, what, fix))
        for name in filenames:
            path = Path(top, name)
            files[path.relative_to(root).as_posix()] = path
    return dict(sorted(files.items())), sorted(found, key=lambda problem: problem.path)


def refusal(found: list[Problem]) -> errors.DtoolS3Error:
    """Return the one-line error for ``found``: the first in full, a few more by name."""
    first = found[0]
    if first.missing:
        message = f"local file not found: {_text(first.path)}"
    else:
        message = f"cannot upload {_text(first.path)}: it {first.what}; {first.fix}"
    more = [f"{_text(p.path)} {p.what}" for p in found[1 : 1 + NAMED_MORE]]
    if len(found) > 1 + NAMED_MORE:
        more.append(f"and {len(found) - 1 - NAMED_MORE} more")
    if more:
        message += f" (also: {'; '.join(more)})"
    if first.missing:
        return errors.ObjectNotFound(message)
    return errors.LocalFileError(message)


def _open(path: Path) -> int:
    """Open ``path`` read-only without blocking; raise _Refused unless it is a regular file."""
    try:
        # Looked at first, so that no device or FIFO is ever opened.
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            raise _Refused(_not_regular(path, mode))
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise _Refused(_failed(path, exc)) from exc
    # What was opened may not be what was looked at, if the path was replaced in between.
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise _Refused(_not_regular(path, mode))
    return fd


def _not_regular(path: Path, mode: int) -> Problem:
    if stat.S_ISDIR(mode):
        return Problem(path, "is a directory, not a regular file", "add the files in it instead")
    kind = next((name for test, name in _SPECIAL if test(mode)), "a special file")
    return Problem(path, f"is {kind}, not a regular file", _SPECIAL_FIX)


def _failed(path: Path, exc: OSError) -> Problem:
    if exc.errno == errno.ELOOP:
        return Problem(path, "is a symbolic link that loops (too many levels of links)", _LINK_FIX)
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        try:
            target = _text(os.readlink(path))
        except OSError:  # no symbolic link (or no longer): the file itself is missing
            return Problem(path, "does not exist", "check the path", missing=True)
        return Problem(path, f"is a symbolic link to '{target}', which does not exist", _LINK_FIX)
    if exc.errno in (errno.EACCES, errno.EPERM):
        return Problem(path, "cannot be read (permission denied)", _UNREADABLE_FIX)
    return Problem(path, f"cannot be opened ({exc.strerror})", "check it, or leave it out")


def _text(path: str | Path) -> str:
    """A path for a one-line message: control characters escaped (a newline as ``\\n``)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in os.fsdecode(path))
