"""The local download cache of S3 items, which serves an entry only if its MD5 is the expected one.

Layout: ``<DTOOL_CACHE_DIRECTORY>/s3/<endpoint digest>/<bucket>/<uuid>/<identifier><ext>``. The
endpoint and bucket are part of the key, so two datasets with one UUID (a copy, or a hostile
bucket) never share entries. Each entry has a sidecar ``<entry>.verified`` recording the MD5 it
was verified to have together with the file's size, mtime, ctime and inode: an entry whose file
still matches its sidecar is served without reading it again; any other entry is hashed before
it is served (and the sidecar rewritten), or replaced if its content is wrong. Editing a file
changes its ctime, which no user-level call can set back.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
from pathlib import Path

from .._s3.checksums import md5_of_stream
from .._s3.transfer import is_local_write_error, temporary_file
from ..config import S3Config

logger = logging.getLogger(__name__)
_SIDECAR = ".verified"
# Only plain short extensions are kept: the relpath comes from the bucket.
_SUFFIX_RE = re.compile(r"^\.[A-Za-z0-9_+-]{1,16}$")
#: A ``.part`` file untouched for this long belongs to a download that died.
STALE_PART_SECONDS = 15 * 60
_swept: set[Path] = set()
_swept_lock = threading.Lock()


def dataset_directory(config: S3Config, uuid: str) -> Path:
    """Return the cache directory of one dataset of one bucket of one endpoint."""
    endpoint = hashlib.sha256((config.endpoint_url or "aws").encode("utf-8")).hexdigest()[:16]
    return Path(config.cache_directory) / "s3" / endpoint / config.bucket / uuid


def entry_path(directory: Path, ident: str, relpath: str) -> Path:
    """Return where an item is cached; the relpath's extension is kept when it is plain."""
    suffix = Path(relpath).suffix
    return directory / (ident + (suffix if _SUFFIX_RE.match(suffix) else ""))


def _stamp(path: Path) -> str:
    status = path.stat()
    return f"{status.st_size} {status.st_mtime_ns} {status.st_ctime_ns} {status.st_ino}"


def is_valid(path: Path, md5: str, size: int | None) -> bool:
    """Return whether ``path`` holds content with this MD5 (hashing it if not known yet)."""
    try:
        stamp = _stamp(path)
    except FileNotFoundError:
        return False
    if size is not None and int(stamp.split()[0]) != size:
        return False
    sidecar = path.with_name(path.name + _SIDECAR)
    try:
        if sidecar.read_text(encoding="ascii") == f"{md5} {stamp}":
            return True
    except (OSError, UnicodeDecodeError):
        pass
    with path.open("rb") as stream:
        actual, _ = md5_of_stream(stream)
    if actual != md5:
        logger.warning("discarding cached %s: its MD5 is %s, not %s", path, actual, md5)
        return False
    remember(path, md5)
    return True


def remember(path: Path, md5: str) -> None:
    """Record that ``path`` was just verified to hold content with this MD5.

    A disk too full for the sidecar costs only a second hashing when the entry is next used:
    the entry itself is verified and complete, so the read that needs it goes on.
    """
    sidecar = path.with_name(path.name + _SIDECAR)
    try:
        fd, tmp = temporary_file(path.parent)
    except OSError as exc:
        if not is_local_write_error(exc):
            raise
        logger.warning("cannot record that %s is verified: %s", path, exc)
        return
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(f"{md5} {_stamp(path)}")
        os.replace(tmp, sidecar)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if not is_local_write_error(exc):
            raise
        logger.warning("cannot record that %s is verified: %s", path, exc)


def sweep(directory: Path) -> None:
    """Remove ``.part`` files of dead downloads from a dataset's cache directory (once each)."""
    with _swept_lock:
        if directory in _swept:
            return
        _swept.add(directory)
    cutoff = time.time() - STALE_PART_SECONDS
    try:
        candidates = list(directory.glob("*.part"))
    except OSError:
        return
    for part in candidates:
        try:
            if part.stat().st_mtime < cutoff:
                part.unlink()
        except OSError:
            continue
