"""Moving item content: uploads with server-verified MD5s, verified downloads.

* Every upload carries ``Content-MD5``, so the server verifies what it received. Small files are
  read once into memory, hashed and sent. Files up to ``multipart_threshold`` are hashed in a
  first pass and then streamed from disk in one PUT: one MD5 pass and no part bookkeeping, which
  measured faster than multipart on every loopback server (docs/benchmarks.md). Larger files are
  hashed in a first pass (the ``checksum`` metadata is set when the multipart upload is
  created), then sent in ``part_size`` parts by :func:`.multipart.write_parts`.
* Downloads stream into a temporary file next to the target while hashing, and are renamed into
  place only when size and MD5 match. The file gets the mode ``open()`` would give it (0666
  less the umask), as ``dtool cp`` does, unless it is ``private`` (the download cache).
* Bodies go through the transport :func:`.transport.bodies` picks: awscrt
  (``DTOOL_S3_ENGINE=crt``) when the client has it, else botocore. Every function that moves a
  body takes ``on_bytes`` for byte-accurate progress.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import BinaryIO

from .. import errors
from .._format.uri import object_url
from .checksums import CHUNK, md5_of_chunks, md5_of_stream, size_differs
from .client import S3Client
from .flow import ByteBudget, HighWater, OnBytes, report
from .multipart import write_parts
from .retry import retrying
from .transport import bodies, paced

logger = logging.getLogger(__name__)
# Below this, reading a file into memory once beats hashing it and streaming it in a second pass.
_IN_MEMORY = 8 * 1024 * 1024
#: What else to do about a full disk where the download cache is.
CACHE_ADVICE = "or set DTOOL_CACHE_DIRECTORY to a directory on another disk"


@dataclass(frozen=True)
class Uploaded:
    """What an upload stored."""

    key: str
    size: int
    md5: str


def upload_stream(
    client: S3Client,
    key: str,
    stream: BinaryIO,
    metadata: Callable[[str], dict[str, str]],
    budget: ByteBudget,
    *,
    on_bytes: OnBytes | None = None,
) -> Uploaded:
    """Upload an open binary file to ``key``; ``metadata(md5hex)`` gives the user metadata.

    :param budget: bounds the file content held in memory across concurrent uploads
    :param on_bytes: told the size of each body or part once the server has accepted it
    """
    config = client.config
    size = os.fstat(stream.fileno()).st_size
    if _IN_MEMORY < size <= config.multipart_threshold:
        md5hex, size = md5_of_stream(stream)
        stream.seek(0)
        bodies(client, stream=True).put(key, stream, size, bytes.fromhex(md5hex), metadata(md5hex))
        report(on_bytes, size)
        return Uploaded(key, size, md5hex)
    if size <= config.multipart_threshold:
        budget.acquire(size)
        try:
            body = stream.read()
            digest = hashlib.md5(body)
            bodies(client).put(key, body, len(body), digest.digest(), metadata(digest.hexdigest()))
        finally:
            budget.release(size)
        report(on_bytes, len(body))
        return Uploaded(key, len(body), digest.hexdigest())
    md5hex, size = md5_of_stream(stream)
    stream.seek(0)
    write_parts(client, key, metadata(md5hex), stream.read, budget, on_bytes)
    return Uploaded(key, size, md5hex)


def put_body(client: S3Client, key: str, body: bytes, metadata: dict[str, str]) -> None:
    """Store a body held in memory with ``Content-MD5``, through the fast transport if any."""
    bodies(client).put(key, body, len(body), hashlib.md5(body).digest(), metadata)


def download(
    client: S3Client,
    key: str,
    target: Path,
    expected_md5: str | None = None,
    expected_size: int | None = None,
    *,
    on_bytes: OnBytes | None = None,
    advice: str = CACHE_ADVICE,
    private: bool = False,
) -> Path:
    """Download ``key`` to ``target`` atomically, checking size and MD5 while receiving.

    Objects the manifest says are at most ``part_size`` come through the fast engine, larger
    ones as one botocore stream (see :func:`_small`); either way the MD5 is computed once, in
    order, as the bytes arrive.

    :param on_bytes: told the size of each chunk as it is received (each byte once, retries
                     included)
    :param advice: what else to do about a full disk, after "free some space there, "
    :param private: leave the file readable by this user only, whatever the umask
    :raises IntegrityError: if the content does not match what the manifest says
    :raises LocalFileError: for local problems such as a full disk (the partial file is removed)
    """
    where = object_url(client.bucket, key)
    with _local_writes(target.parent, where, advice):
        target.parent.mkdir(parents=True, exist_ok=True)
    transport = bodies(client, stream=not _small(client, expected_size))
    progress = HighWater(on_bytes)

    def attempt() -> Path:
        with _local_writes(target.parent, where, advice):
            fd, tmp_name = temporary_file(target.parent, private=private)
        try:
            with os.fdopen(fd, "wb") as out:
                md5hex, size = transport.receive(key, out, progress, expected_size)
            check_content(where, md5hex, size, expected_md5, expected_size)
            os.replace(tmp_name, target)
        except BaseException as exc:
            Path(tmp_name).unlink(missing_ok=True)
            if is_local_write_error(exc):
                raise local_write_error(exc, target.parent, f"downloading {where}", advice) from exc
            raise
        return target

    return retrying(attempt, client.config, where)


def temporary_file(directory: Path, *, private: bool = True) -> tuple[int, str]:
    """Create a file for content on its way to a name in ``directory``: (open fd, path).

    The name is short whatever the final name is (a legal 255-byte name plus a random part and
    ``.part`` would be too long for the file system), and starts with a dot.

    :param private: keep mkstemp's 0600; else give the file the mode ``open()`` would
    """
    fd, name = tempfile.mkstemp(prefix=".dtool-", suffix=".part", dir=directory)
    if not private:
        try:
            os.chmod(name, 0o666 & ~umask())
        except BaseException:
            os.close(fd)
            Path(name).unlink(missing_ok=True)
            raise
    return fd, name


_umask_lock = threading.Lock()


def umask() -> int:
    """The process's umask, read once.

    Linux reports it in /proc; elsewhere it can only be read by setting it, which is done once,
    under a lock, so that no two threads of ours see each other's temporary value.
    """
    with _umask_lock:
        return _read_umask()


@cache
def _read_umask() -> int:
    found = _proc_umask()
    if found is None:
        found = os.umask(0o077)
        os.umask(found)
    return found


def _proc_umask() -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _small(client: S3Client, size: int | None) -> bool:
    """Whether a download of this size is small enough for the fast transport (one part).

    An empty item is not: the range that bounds what awscrt holds of a lying body cannot be
    asked of an empty object.
    """
    return size is not None and 0 < size <= client.config.part_size


def hash_object(client: S3Client, key: str, on_bytes: OnBytes | None = None) -> tuple[str, int]:
    """Return (MD5 hex, size) of an object's bytes as the server sends them now (1 MiB held)."""
    progress = HighWater(on_bytes)
    where = object_url(client.bucket, key)

    def hashed(_: bytes, position: int) -> None:
        client.cancel.check()
        progress.reached(position)

    def attempt() -> tuple[str, int]:
        with paced(client, client.call("get_object", key)["Body"], where) as body:
            chunks = iter(partial(body.read, CHUNK), b"")
            return md5_of_chunks(chunks, hashed)

    return retrying(attempt, client.config, where)


def check_content(
    where: str, md5hex: str, size: int, expected_md5: str | None, expected_size: int | None
) -> None:
    """Raise :class:`IntegrityError` unless the bytes of ``where`` match the manifest."""
    if expected_size is not None and size != expected_size:
        raise size_differs(where, str(size), expected_size)
    if expected_md5 is not None and md5hex != expected_md5:
        raise errors.IntegrityError(
            f"{where} has MD5 {md5hex} but the manifest says {expected_md5}: "
            "the item is corrupted in the bucket"
        )


#: Local write failures a user can fix: (what happened, what to do about it), by errno.
_LOCAL_WRITE_ERRORS = {
    errno.ENOSPC: ("the disk is full", "free some space there"),
    errno.EDQUOT: ("the disk quota is exceeded", "free some space there"),
    errno.EFBIG: ("the file size limit is exceeded", "raise the limit (ulimit -f)"),
    errno.EROFS: ("the file system is read-only", "make it writable"),
    errno.EACCES: ("permission denied", "make it writable"),
    errno.EPERM: ("permission denied", "make it writable"),
}


def is_local_write_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a local write failure a user can fix (a full disk, a read-only one...)."""
    # Network failures are OSErrors too (ECONNRESET...); only these errnos are about the disk.
    return (
        isinstance(exc, OSError)
        and not isinstance(exc, errors.DtoolS3Error)
        and exc.errno in _LOCAL_WRITE_ERRORS
    )


def local_write_error(
    exc: BaseException, directory: Path, doing: str, advice: str
) -> errors.LocalFileError:
    """The one-line error for a local write failure (see :func:`is_local_write_error`).

    :param doing: what was going on, e.g. ``"downloading s3://..."``
    :param advice: what else to do, after e.g. "free some space there, "
    """
    reason, fix = _LOCAL_WRITE_ERRORS[getattr(exc, "errno", errno.ENOSPC)]
    return errors.LocalFileError(
        f"cannot write to {directory} while {doing}: {reason}; {fix}, {advice}"
    )


@contextmanager
def _local_writes(directory: Path, where: str, advice: str = CACHE_ADVICE) -> Iterator[None]:
    """Turn disk-full and permission errors of local file operations into one-line errors."""
    try:
        yield
    except OSError as exc:
        if is_local_write_error(exc):
            raise local_write_error(exc, directory, f"downloading {where}", advice) from exc
        raise
