"""What a copy reports while it runs (:class:`Progress`) and what it returns (:class:`CopyResult`).

Every copy path (to S3, to disk, through dtoolcore) builds its result with :func:`copy_result`,
so the counts mean the same whichever path moved the bytes.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from .. import errors
from .._format.manifest import Entry


class Progress(Protocol):
    """What a copy reports as it goes; ``advance`` and ``item_done`` come from worker threads."""

    def start(self, items: int, size: int, skipped: int) -> None:
        """The copy moves ``items`` items of ``size`` bytes; ``skipped`` are kept (resume)."""

    def advance(self, nbytes: int) -> None:
        """``nbytes`` more item bytes were sent (or copied by the server)."""

    def item_done(self) -> None:
        """One more item is stored and verified."""


class _Silent:
    def start(self, items: int, size: int, skipped: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def item_done(self) -> None:
        pass


def quiet(progress: Progress | None) -> Progress:
    """The progress to report to: ``progress``, or one that ignores everything."""
    return progress if progress is not None else _Silent()


@dataclass(frozen=True)
class CopyResult:
    """Where a copy landed and what it moved (small enough for XCom)."""

    uri: str
    name: str
    uuid: str
    item_count: int
    size_in_bytes: int
    copied_items: int
    copied_bytes: int
    skipped_items: int
    resumed: bool
    server_side: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def copy_result(
    uri: str,
    admin: Mapping[str, Any],
    entries: Mapping[str, Entry],
    moved: Collection[Entry],
    *,
    resumed: bool,
    server_side: bool = False,
) -> CopyResult:
    """The result of copying the dataset of ``admin`` and ``entries`` to ``uri``.

    :param moved: the items this copy transferred; the others were already there (resume)
    """
    return CopyResult(
        uri=uri,
        name=str(admin["name"]),
        uuid=str(admin["uuid"]),
        item_count=len(entries),
        size_in_bytes=sum(e.size for e in entries.values()),
        copied_items=len(moved),
        copied_bytes=sum(e.size for e in moved),
        skipped_items=len(entries) - len(moved),
        resumed=resumed,
        server_side=server_side,
    )


def exists_error(uri: str, frozen: bool, resume_with: str) -> errors.DatasetStateError:
    """The one line for a copy onto a dataset that is already there."""
    what = "a frozen copy" if frozen else "an interrupted copy"
    return errors.DatasetStateError(
        f"a dataset already exists at {uri} ({what}): copy with {resume_with} to finish or "
        "reuse it, or delete it first"
    )
