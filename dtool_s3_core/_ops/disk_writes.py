"""Writing a local dataset so that a full disk ends in one line and a copy a resume can finish.

The frozen state of a disk dataset is its admin metadata saying ``dataset``; what :func:`freeze`
writes is therefore written whole or not at all (a temporary file renamed into place), the admin
metadata last, so that a disk that fills up leaves a proto dataset, never a half-written manifest
under admin metadata that calls it frozen. A copy that fails while creating the dataset removes
what it made: a half-written ``.dtool/dtool`` would stop a resume.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dtoolcore
from dtoolcore.storagebroker import DiskStorageBroker

from .._format.manifest import Entry
from .._s3.transfer import is_local_write_error, local_write_error, temporary_file

#: The disk broker's hash function whose values are the manifest's MD5s.
DISK_HASHER = "md5sum_hexdigest"


@contextmanager
def disk_writes(dataset: Path, doing: str, advice: str) -> Iterator[None]:
    """Turn a full disk (or a read-only one...) while writing ``dataset`` into one line.

    The line names the directory of the file that could not be written where the error says
    which file it was (a failed ``write`` or ``close`` does not), else the dataset's.
    """
    try:
        yield
    except OSError as exc:
        if not is_local_write_error(exc):
            raise
        directory = Path(exc.filename).parent if exc.filename else dataset
        raise local_write_error(exc, directory, doing, advice) from exc


def create(proto: dtoolcore.ProtoDataSet, dataset: Path) -> None:
    """Create a proto dataset; if the disk fails, remove what was made (only this made it)."""
    try:
        proto.create()
    except OSError as exc:
        if is_local_write_error(exc):
            shutil.rmtree(dataset, ignore_errors=True)
        raise


def freeze(
    broker: DiskStorageBroker,
    admin: dict[str, Any],
    entries: dict[str, Entry],
    overlays: dict[str, dict[str, Any]],
) -> None:
    """Freeze with the broker's own steps, taking each item's MD5 from the verified download.

    Every item was checked against these sizes and MD5s as it arrived (or, kept by a resume,
    re-hashed), so only the timestamp is read from the file, as dtoolcore does. The documents
    are the broker's, formatted as it formats them, each written whole.
    """
    broker.pre_freeze_hook()
    items = {
        ident: {
            "relpath": entry.relpath,
            "size_in_bytes": entry.size,
            "hash": entry.md5,
            "utc_timestamp": broker.get_utc_timestamp(entry.relpath),
        }
        for ident, entry in entries.items()
    }
    manifest = {
        "items": items,
        "dtoolcore_version": dtoolcore.__version__,
        "hash_function": DISK_HASHER,
    }
    # Temporary files go to .dtool itself: a leftover there is read by no one, where one in
    # .dtool/overlays would be listed as an overlay.
    scratch = Path(broker.get_admin_metadata_key()).parent
    _write_whole(broker.get_manifest_key(), json.dumps(manifest, indent=2, sort_keys=True), scratch)
    for name, overlay in overlays.items():
        _write_whole(broker.get_overlay_key(name), json.dumps(overlay, indent=2), scratch)
    # A copy keeps the source's frozen_at, as dtoolcore's freeze does for copies.
    frozen = {**admin, "type": "dataset", "frozen_at": admin.get("frozen_at", time.time())}
    _write_whole(broker.get_admin_metadata_key(), json.dumps(frozen), scratch)
    broker.post_freeze_hook()


def _write_whole(path: str, text: str, scratch: Path) -> None:
    """Write a file whole or not at all, by way of a temporary file in ``scratch``.

    The file gets the mode dtoolcore's own writes give it (0666 less the umask).
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temporary_file(scratch, private=False)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
