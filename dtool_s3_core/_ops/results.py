"""What a copy reports while it runs (:class:`Progress`) and what it returns (:class:`CopyResult`).

Every copy path (to S3, to disk, through dtoolcore) builds its result with :func:`copy_result`,
so the counts mean the same whichever path moved the bytes.

A copy onto an existing dataset (a resume) asks here whether the destination is the source's:
:func:`check_identity` (the same dataset, not another of that UUID), :func:`check_frozen_copy`
(a frozen destination is complete and intact) and :func:`item_problem` (which items of an
interrupted copy can be kept), so the S3 and disk paths apply one rule.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from .. import errors
from .._format import validate
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
    """The one line for a copy onto a dataset that is already there.

    :param resume_with: how the user asks for a resume where they are, e.g. ``resume=True`` or
                        ``'dtool s3 cp --resume <src> <dest>'``
    """
    what = "a frozen copy" if frozen else "an interrupted copy"
    return errors.DatasetStateError(
        f"a dataset already exists at {uri} ({what}): copy with {resume_with} to finish or "
        f"reuse it, or delete it first{deleted_with(uri)}"
    )


def deleted_with(uri: str) -> str:
    """`` with 'dtool s3 rm <uri>'`` for an S3 dataset, nothing for a local one."""
    return f" with 'dtool s3 rm {uri}'" if uri.startswith("s3://") else ""


# -- is the destination a copy of the source? ----------------------------------------------------

#: The admin metadata that tell two datasets of one UUID apart; every copy keeps them.
IDENTITY_KEYS = ("name", "creator_username", "created_at")


@dataclass(frozen=True)
class Stored:
    """What a destination holds for one item, as far as it is known without reading its bytes.

    :param checksum: the MD5 the destination claims (S3 checksum metadata, a local manifest's
                     hash, or one just computed); None if it claims none
    :param etag: the S3 ETag, compared only where it is a plain MD5
    :param handle: its relpath where known, to name an item the source does not have
    """

    size: int
    checksum: str | None
    etag: str = ""
    handle: str = ""


def item_problem(entry: Entry, stored: Stored | None) -> str | None:
    """Why ``stored`` is not the source's item ``entry`` (one phrase), None if it is."""
    name = validate.shown(entry.relpath)
    if stored is None:
        return f"missing item: {name}"
    if stored.size != entry.size:
        return f"size differs: {name}"
    if validate.MD5_RE.match(stored.etag) and stored.etag != entry.md5:
        return f"ETag differs: {name}"
    if stored.checksum != entry.md5:
        return f"checksum differs: {name}"
    return None


def compare(entries: Mapping[str, Entry], stored: Mapping[str, Stored]) -> list[str]:
    """Everything that differs between the source's items and a destination's, by identifier."""
    problems = [
        problem
        for ident in sorted(entries, key=lambda i: entries[i].relpath)
        if (problem := item_problem(entries[ident], stored.get(ident))) is not None
    ]
    problems += [
        f"unexpected item: {validate.shown(stored[i].handle) if stored[i].handle else i}"
        for i in sorted(set(stored) - set(entries))
    ]
    return problems


def as_stored(entries: Mapping[str, Entry]) -> dict[str, Stored]:
    """A manifest's items as what a dataset claims to hold (to compare two manifests)."""
    return {i: Stored(e.size, e.md5, handle=e.relpath) for i, e in entries.items()}


def check_identity(uri: str, source_admin: Mapping[str, Any], found: Mapping[str, Any]) -> None:
    """Refuse a destination whose admin metadata say it is another dataset of the same UUID.

    :raises DatasetStateError: naming what differs; such a dataset is never adopted or frozen
    """
    differences = [
        f"{key} {validate.shown(found.get(key))} is not the source's "
        f"{validate.shown(source_admin.get(key))}"
        for key in IDENTITY_KEYS
        if not _same_value(source_admin.get(key), found.get(key))
    ]
    if differences:
        raise errors.DatasetStateError(
            f"{uri} holds another dataset with the source's UUID ({', '.join(differences)}): "
            f"delete it{deleted_with(uri)}, or copy to another base URI"
        )


def check_frozen_copy(
    uri: str,
    entries: Mapping[str, Entry],
    found_entries: Mapping[str, Entry],
    stored_items: Callable[[], Mapping[str, Stored]],
) -> None:
    """Refuse a frozen destination that is not a complete, intact copy of the source.

    :param found_entries: the destination's manifest, compared first (no request)
    :param stored_items: what the destination holds now, read only if the manifests agree
    :raises DatasetStateError: if the manifests or the stored items differ
    """
    problems = compare(entries, as_stored(found_entries))
    if problems:
        raise errors.DatasetStateError(
            f"the frozen dataset at {uri} has another manifest than the source "
            f"({_first(problems)}): delete it{deleted_with(uri)}, or copy to another base URI"
        )
    problems = compare(entries, stored_items())
    if problems:
        raise errors.DatasetStateError(
            f"the frozen copy at {uri} does not match the source ({_first(problems)}): a copy "
            f"cannot repair a frozen dataset; delete it{deleted_with(uri)} and copy again"
        )


def _same_value(a: Any, b: Any) -> bool:
    # created_at is a number that JSON may carry as an int or a float.
    if validate.is_number(a) and validate.is_number(b):
        return float(a) == float(b)
    return bool(a == b)


def _first(problems: list[str]) -> str:
    more = len(problems) - 1
    return problems[0] + (f", and {more} more" if more else "")
