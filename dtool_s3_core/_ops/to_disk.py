"""Copying a frozen S3 dataset to a local disk: each item downloads straight into the new dataset.

``dtool cp`` fetches every item into the download cache and copies it from there, so a copy needs
twice its size on disk. Here the proto dataset is created with dtoolcore's public API, each item
is downloaded (verified against the manifest while it streams) into its place in the proto
dataset's data directory, and the dataset is frozen through dtoolcore's disk broker with the MD5s
just verified: the result is an ordinary disk dataset, the cache is never touched, and no byte is
read twice (``ProtoDataSet.freeze`` would hash every item again: a second full read of the
dataset). An interrupted copy stays a proto dataset that ``resume`` finishes, keeping files that
already have the manifest's size and MD5. A resume refuses a directory that holds another dataset
of the same UUID, or a frozen copy whose manifest or files differ from the source's.

A source whose items no local disk can hold together (a name over the file system's limit, an
item that is also a directory of others: other writers put such datasets into buckets) is
refused before anything is written. A full disk ends in one line naming the directory, and the
copy stays a proto dataset that a resume finishes (see :mod:`.disk_writes`).
"""

from __future__ import annotations

import hashlib
import logging
import os
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

import dtoolcore
from dtoolcore.storagebroker import DiskStorageBroker

from .. import errors
from .._format import validate
from .._format.keys import identifier
from .._format.manifest import Entry
from .disk_writes import DISK_HASHER, create, disk_writes, freeze
from .results import (
    CopyResult,
    Progress,
    Stored,
    check_frozen_copy,
    check_identity,
    copy_result,
    exists_error,
    item_problem,
    quiet,
)
from .sources import LocalSource, S3Source

logger = logging.getLogger(__name__)


def is_disk_base(base_uri: str) -> bool:
    """Whether a base URI is a local directory (a path or ``file://``), handled here."""
    scheme = urlsplit(base_uri).scheme
    return scheme in ("", "file") or len(scheme) == 1  # a Windows drive letter


def copy_to_disk(
    source: S3Source,
    dest_base_uri: str,
    resume: bool = False,
    config_path: str | None = None,
    progress: Progress | None = None,
    resume_with: str = "resume=True",
) -> CopyResult:
    """Copy ``source`` into a disk dataset below ``dest_base_uri``, keeping its UUID.

    :param resume_with: how the user asks for a resume, named in messages

    :raises DatasetStateError: if the destination exists and ``resume`` is False, or holds a
                               different dataset; if the source has items a local disk cannot
                               hold (names too long, a file that is also a directory)
    :raises LocalFileError: if the disk is full (or read-only...); the copy stays a proto dataset
                            that ``resume`` finishes
    """
    assert source.s3 is not None
    dataset = source.s3
    admin = source.admin
    entries = source.entries()
    base = Path(local_path(dest_base_uri))
    if not base.is_dir():
        raise errors.ObjectNotFound(f"destination directory not found: {base}: create it first")
    source.check_local_names(dest_base_uri, name_max(base))
    proto_admin = {**admin, "type": "protodataset"}
    proto = dtoolcore.generate_proto_dataset(proto_admin, str(base), config_path)
    uri = str(proto.uri)
    found = _existing(uri, str(admin["uuid"]))
    directory = Path(local_path(uri))
    data = directory / "data"
    advice = f"then finish the copy with {resume_with}"
    writes = partial(disk_writes, directory, f"copying {source.uri}", advice)

    if found is not None:
        check_identity(uri, admin, found)
        frozen = found.get("type") == "dataset"
        if not resume:
            raise exists_error(uri, frozen, resume_with)
        if frozen:
            _check_frozen_copy(uri, data, entries, config_path)
            logger.info("%s is already a complete copy; nothing to do", uri)
            return copy_result(uri, admin, entries, [], resumed=True)
        proto = dtoolcore.ProtoDataSet.from_uri(uri, config_path)
    else:
        with writes():
            create(proto, directory)
    targets = {
        ident: data.joinpath(*PurePosixPath(e.relpath).parts) for ident, e in entries.items()
    }
    _remove_strays(data, set(targets.values()))
    todo = [e for ident, e in entries.items() if not _intact(targets[ident], e)]
    report = quiet(progress)
    report.start(len(todo), sum(e.size for e in todo), len(entries) - len(todo))

    def fetch(entry: Entry) -> None:
        dataset.download_to(entry.identifier, targets[entry.identifier], report.advance, advice)
        report.item_done()

    dataset.run_all([partial(fetch, e) for e in todo])
    with writes():
        proto.put_readme(source.readme())
        for tag in source.tags():
            proto.put_tag(tag)
        for name, annotation in source.annotations().items():
            proto.put_annotation(name, annotation)
        broker = DiskStorageBroker(uri, config_path)
        if _freezable(broker, entries):
            freeze(broker, dict(proto.admin_metadata), entries, source.overlays())
        else:
            for name, overlay in source.overlays().items():
                for ident, value in overlay.items():
                    proto.add_item_metadata(entries[ident].relpath, name, value)
            proto.freeze()
    return copy_result(uri, admin, entries, todo, resumed=found is not None)


def _freezable(broker: DiskStorageBroker, entries: dict[str, Entry]) -> bool:
    """Whether the verified MD5s describe the data directory exactly as dtoolcore would."""
    if getattr(broker.hasher, "name", None) != DISK_HASHER:
        return False
    return set(broker.iter_item_handles()) == {e.relpath for e in entries.values()}


def name_max(directory: Path) -> int:
    """The longest file name, in bytes, of the file system of ``directory`` (at most NAME_MAX)."""
    try:
        return min(validate.NAME_MAX, os.pathconf(directory, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):  # no pathconf on Windows
        return validate.NAME_MAX


def local_path(uri: str) -> str:
    """The local path of a disk URI (a path or ``file://``)."""
    parts = urlsplit(uri)
    return unquote(parts.path) if parts.scheme == "file" else uri


def _existing(uri: str, uuid: str) -> dict[str, Any] | None:
    """The admin metadata of the dataset at ``uri``, None if there is none.

    :raises DatasetStateError: if it is a dataset of another UUID
    """
    if not (Path(local_path(uri)) / ".dtool" / "dtool").is_file():
        return None
    try:
        found = dtoolcore.ProtoDataSet.from_uri(uri)
    except dtoolcore.DtoolCoreTypeError:
        found = dtoolcore.DataSet.from_uri(uri)
    if found.uuid != uuid:
        raise errors.DatasetStateError(
            f"another dataset (UUID {found.uuid}) already exists at {uri}: copy to another "
            "directory, or delete it first"
        )
    return dict(found.admin_metadata)


def _check_frozen_copy(
    uri: str, data: Path, entries: dict[str, Entry], config_path: str | None
) -> None:
    """Refuse a frozen local destination that is not a complete copy of the source.

    Its manifest must be the source's, and every file there with its manifest's size; the files
    are not hashed again (that would read the whole copy; ``dtool verify -f`` does it).
    """
    found = LocalSource(uri, config_path).entries()
    check_frozen_copy(uri, entries, found, partial(_files, data, found))


def _files(data: Path, found: dict[str, Entry]) -> dict[str, Stored]:
    """Every file of a frozen data directory by identifier: its size and its manifest's MD5."""
    stored: dict[str, Stored] = {}
    for path in _all_files(data):
        relpath = path.relative_to(data).as_posix()
        ident = identifier(relpath)
        md5 = found[ident].md5 if ident in found else None
        stored[ident] = Stored(path.stat().st_size, md5, handle=relpath)
    return stored


def _all_files(data: Path) -> list[Path]:
    return sorted(p for p in data.rglob("*") if p.is_file()) if data.is_dir() else []


def _remove_strays(data: Path, wanted: set[Path]) -> None:
    # Leftovers of an interrupted copy (partial downloads) would become items at the freeze.
    for path in _all_files(data):
        if path not in wanted:
            logger.info("removing %s, which is not an item of the source", path)
            path.unlink()


def _intact(path: Path, entry: Entry) -> bool:
    """Whether a file of an interrupted copy is the source's item (hashed only if its size is)."""
    if not path.is_file() or path.stat().st_size != entry.size:
        return False
    md5 = hashlib.md5()
    with open(path, "rb") as stream:
        while chunk := stream.read(1024 * 1024):
            md5.update(chunk)
    return item_problem(entry, Stored(entry.size, md5.hexdigest())) is None
