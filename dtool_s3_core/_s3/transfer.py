"""Moving item content: uploads with server-verified MD5s, verified downloads, background queues.

* Every upload carries ``Content-MD5``, so the server verifies what it received. Small files are
  read once into memory, hashed and sent. Files up to ``multipart_threshold`` are hashed in a
  first pass and then streamed from disk in one PUT: one MD5 pass and no part bookkeeping, which
  measured faster than multipart on every loopback server (docs/benchmarks.md). Larger files are
  hashed in a first pass (the ``checksum`` metadata is set when the multipart upload is
  created), then sent in ``part_size`` parts, each with its own ``Content-MD5``; a failed
  multipart upload is aborted.
* Downloads stream into a temporary file next to the target while hashing, and are renamed into
  place only when size and MD5 match.
* Bodies go through the fast native engine (:mod:`.crt_transport`, ``DTOOL_S3_ENGINE=crt``) when the
  client has one, else through botocore; both send the same headers and fail with the same
  errors. Every function that moves a body takes ``on_bytes`` for byte-accurate progress.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from .. import errors
from .._format import validate
from ..config import MiB, S3Config
from .client import S3Client, retrying

if TYPE_CHECKING:
    from .crt_transport import CrtEngine

logger = logging.getLogger(__name__)
_READ_CHUNK = 1024 * 1024
# Below this, reading a file into memory once beats hashing it and streaming it in a second pass.
_IN_MEMORY = 8 * 1024 * 1024


@dataclass(frozen=True)
class Uploaded:
    """What an upload stored."""

    key: str
    size: int
    md5: str


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def md5_of_stream(stream: BinaryIO) -> tuple[str, int]:
    """Return (MD5 hex, size) of a stream read to its end in 1 MiB chunks."""
    md5 = hashlib.md5()
    size = 0
    while chunk := stream.read(_READ_CHUNK):
        md5.update(chunk)
        size += len(chunk)
    return md5.hexdigest(), size


class ByteBudget:
    """Bounds the bytes of file content held in memory at once, across all uploads of a broker.

    A buffer larger than the whole budget may still go when nothing else is held; otherwise it
    would wait forever.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._used = 0
        self._changed = threading.Condition()

    def acquire(self, size: int) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._used == 0 or self._used + size <= self.limit)
            self._used += size

    def release(self, size: int) -> None:
        with self._changed:
            self._used -= size
            self._changed.notify_all()


def memory_budget(config: S3Config) -> ByteBudget:
    """The budget for one broker: 8 parts, and at least 128 MiB so small files flow freely."""
    return ByteBudget(max(8 * config.part_size, 128 * MiB))


#: Called with the byte count of each part, chunk or whole body as it is sent or received.
OnBytes = Callable[[int], None]


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
        _put(client, key, stream, size, bytes.fromhex(md5hex), metadata(md5hex))
        _report(on_bytes, size)
        return Uploaded(key, size, md5hex)
    if size <= config.multipart_threshold:
        budget.acquire(size)
        try:
            body = stream.read()
            digest = hashlib.md5(body)
            _put(client, key, body, len(body), digest.digest(), metadata(digest.hexdigest()))
        finally:
            budget.release(size)
        _report(on_bytes, len(body))
        return Uploaded(key, len(body), digest.hexdigest())
    md5hex, size = md5_of_stream(stream)
    stream.seek(0)
    upload_id = client.call("create_multipart_upload", key, Metadata=metadata(md5hex))["UploadId"]
    try:
        parts = _upload_parts(client, key, upload_id, stream, budget, on_bytes)
        complete_multipart(client, key, upload_id, parts)
    except BaseException:
        abort_multipart(client, key, upload_id)
        raise
    return Uploaded(key, size, md5hex)


def _report(on_bytes: OnBytes | None, count: int) -> None:
    if on_bytes is not None and count:
        on_bytes(count)


class HighWater:
    """Tells ``on_bytes`` each byte of one object once, however many attempts move it.

    A retried attempt starts again at byte 0 (:func:`.client.retrying`, awscrt's own retries);
    counting it again would push a progress bar past 100 %. Callers say how far an attempt has
    got; only what lies beyond the furthest point so far is reported.
    """

    def __init__(self, on_bytes: OnBytes | None) -> None:
        self._on_bytes = on_bytes
        self._told = 0

    def reached(self, position: int) -> None:
        """The current attempt has moved the object's bytes up to ``position``."""
        if position > self._told:
            _report(self._on_bytes, position - self._told)
            self._told = position


def _put(
    client: S3Client,
    key: str,
    body: bytes | BinaryIO,
    size: int,
    md5: bytes,
    metadata: dict[str, str],
) -> None:
    """One PutObject with Content-MD5: bytes through the fast engine, a file through botocore.

    A file is streamed by botocore in constant memory; awscrt would buffer all of it.
    """
    engine = client.engine
    if engine is None or not isinstance(body, bytes):
        client.call(
            "put_object",
            key,
            Body=body,
            ContentLength=size,
            ContentMD5=_b64(md5),
            Metadata=metadata,
        )
        return
    headers = {"Content-MD5": _b64(md5)}
    headers.update((f"x-amz-meta-{name}", value) for name, value in metadata.items())
    engine.send("PutObject", "PUT", key, headers=headers, body=body)


def _upload_parts(
    client: S3Client,
    key: str,
    upload_id: str,
    stream: BinaryIO,
    budget: ByteBudget,
    on_bytes: OnBytes | None = None,
) -> list[dict[str, Any]]:
    part_size = client.config.part_size
    engine = client.engine
    # awscrt copies a body into a buffer of its own: a part in flight there counts twice.
    held = 2 * part_size if engine is not None else part_size
    workers = max(1, min(8, client.config.max_concurrency))
    futures: list[Future[dict[str, Any]]] = []

    def send(number: int, data: bytes) -> dict[str, Any]:
        md5 = _b64(hashlib.md5(data).digest())
        try:
            if engine is None:
                etag = client.call(
                    "upload_part",
                    key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=data,
                    ContentMD5=md5,
                )["ETag"]
            else:
                etag = engine.send(
                    "UploadPart",
                    "PUT",
                    key,
                    headers={"Content-MD5": md5},
                    query={"partNumber": str(number), "uploadId": upload_id},
                    body=data,
                )["etag"]
        finally:
            budget.release(held)
        _report(on_bytes, len(data))
        return {"PartNumber": number, "ETag": etag}

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dtool-s3-part") as pool:
        number = 0
        while True:
            budget.acquire(held)
            data = stream.read(part_size)
            if not data:
                budget.release(held)
                break
            number += 1
            futures.append(pool.submit(send, number, data))
            if any(f.done() and f.exception() for f in futures):
                break
        return [f.result() for f in futures]


def complete_multipart(
    client: S3Client, key: str, upload_id: str, parts: list[dict[str, Any]]
) -> str:
    """Complete a multipart upload of ``parts`` (PartNumber, ETag) and return the object's ETag.

    CompleteMultipartUpload is the one upload request that cannot simply be sent again: when
    its answer is lost (a read timeout while the server assembles a large object, a cut
    connection), the server may have completed the upload already, and every retry then finds
    no upload (404 NoSuchUpload; moto answers 500). So a failed completion looks at the object:
    if it carries the ETag that exactly these parts make, the upload did complete.
    """
    try:
        response = client.call(
            "complete_multipart_upload", key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
    except errors.DtoolS3Error as exc:
        etag = multipart_etag([str(part["ETag"]) for part in parts])
        if etag is None or _stored_etag(client, key) != etag:
            raise
        logger.info(
            "s3://%s/%s: the server completed the upload, but its answer was lost (%s)",
            client.bucket,
            key,
            exc,
        )
        return etag
    return str(response.get("ETag", "")).strip('"')


def multipart_etag(part_etags: list[str]) -> str | None:
    """The ETag S3 gives an object completed from parts with these ETags (None: not MD5s)."""
    digests = bytearray()
    for quoted in part_etags:
        etag = quoted.strip('"').lower()
        if not validate.MD5_RE.match(etag):
            return None
        digests += bytes.fromhex(etag)
    return f"{hashlib.md5(digests).hexdigest()}-{len(part_etags)}"


def _stored_etag(client: S3Client, key: str) -> str | None:
    try:
        head = client.exists(key)
    except errors.DtoolS3Error:
        return None
    return None if head is None else str(head.get("ETag", "")).strip('"')


def abort_multipart(client: S3Client, key: str, upload_id: str) -> None:
    try:
        client.call("abort_multipart_upload", key, UploadId=upload_id)
    except errors.DtoolS3Error as exc:
        logger.warning(
            "could not abort the multipart upload of s3://%s/%s: %s", client.bucket, key, exc
        )


def download(
    client: S3Client,
    key: str,
    target: Path,
    expected_md5: str | None = None,
    expected_size: int | None = None,
    *,
    on_bytes: OnBytes | None = None,
) -> Path:
    """Download ``key`` to ``target`` atomically, checking size and MD5 while receiving.

    Objects the manifest says are at most ``part_size`` come through the fast engine, larger
    ones as one botocore stream (see :func:`_small`); either way the MD5 is computed once, in
    order, as the bytes arrive.

    :param on_bytes: told the size of each chunk as it is received (each byte once, retries
                     included)
    :raises IntegrityError: if the content does not match what the manifest says
    :raises LocalFileError: for local problems such as a full disk (the partial file is removed)
    """
    where = f"s3://{client.bucket}/{key}"
    with _local_writes(target.parent, where):
        target.parent.mkdir(parents=True, exist_ok=True)
    engine = client.engine
    progress = HighWater(on_bytes)

    def attempt() -> Path:
        with _local_writes(target.parent, where):
            fd, tmp_name = tempfile.mkstemp(
                prefix=target.name + ".", suffix=".part", dir=target.parent
            )
        try:
            with os.fdopen(fd, "wb") as out:
                if engine is not None and _small(client, expected_size):
                    md5hex, size = _receive_crt(engine, key, out, progress)
                else:
                    md5hex, size = _receive_botocore(client, key, out, progress)
            check_content(where, md5hex, size, expected_md5, expected_size)
            os.replace(tmp_name, target)
        except BaseException as exc:
            Path(tmp_name).unlink(missing_ok=True)
            if _is_local_write_error(exc):
                raise _local_write_error(exc, target.parent, where) from exc
            raise
        return target

    return retrying(attempt, client.config.max_attempts, where)


def _receive_botocore(
    client: S3Client, key: str, out: BinaryIO, progress: HighWater
) -> tuple[str, int]:
    body = client.call("get_object", key)["Body"]
    md5 = hashlib.md5()
    size = 0
    for chunk in body.iter_chunks(_READ_CHUNK):
        md5.update(chunk)
        size += len(chunk)
        out.write(chunk)
        progress.reached(size)
    return md5.hexdigest(), size


def _small(client: S3Client, size: int | None) -> bool:
    """Whether a body of this size goes through the native engine.

    awscrt holds a whole single-request body in memory, and on this project's servers its
    parallel ranged GETs came out slower than one botocore stream (the MD5, which must run in
    order, is the bottleneck) at several times the memory (docs/benchmarks.md). So it carries
    bodies up to one part, where its low cost per request is what counts.
    """
    return size is not None and size <= client.config.part_size


def _receive_crt(
    engine: CrtEngine, key: str, out: BinaryIO, progress: HighWater
) -> tuple[str, int]:
    md5 = hashlib.md5()
    fd = out.fileno()
    received = 0
    hashed = 0

    def sink(chunk: memoryview, offset: int) -> None:
        nonlocal md5, received, hashed
        _write_at(fd, chunk, offset)
        if offset == 0 and hashed:
            # A retried request starts again and overwrites the file: hash its bytes, not a
            # mix of two answers (which a changing or hostile server could make differ).
            md5, hashed = hashlib.md5(), 0
        if offset == hashed:
            md5.update(chunk)
            hashed += len(chunk)
        # Never lowered: a shorter retry leaves a stale tail in the file, and the mismatch below
        # then sends the check to what is on disk.
        received = max(received, offset + len(chunk))
        progress.reached(offset + len(chunk))

    engine.send("GetObject", "GET", key, on_body=sink)
    if hashed != received:
        # Out-of-order or uneven delivery: hash what is on disk rather than a partial digest.
        out.flush()
        with open(out.fileno(), "rb", closefd=False) as again:
            again.seek(0)
            return md5_of_stream(again)
    return md5.hexdigest(), received


def hash_object(client: S3Client, key: str, on_bytes: OnBytes | None = None) -> tuple[str, int]:
    """Return (MD5 hex, size) of an object's bytes as the server sends them now (1 MiB held)."""

    progress = HighWater(on_bytes)

    def attempt() -> tuple[str, int]:
        response = client.call("get_object", key)
        md5, size = hashlib.md5(), 0
        for chunk in response["Body"].iter_chunks(1024 * 1024):
            md5.update(chunk)
            size += len(chunk)
            progress.reached(size)
        return md5.hexdigest(), size

    return retrying(attempt, client.config.max_attempts, f"s3://{client.bucket}/{key}")


def _write_at(fd: int, chunk: memoryview, offset: int) -> None:
    """Write all of ``chunk`` at ``offset``: pwrite may write less (e.g. at a file size limit,
    where the next call raises EFBIG)."""
    view = memoryview(chunk)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def check_content(
    where: str, md5hex: str, size: int, expected_md5: str | None, expected_size: int | None
) -> None:
    """Raise :class:`IntegrityError` unless the bytes of ``where`` match the manifest."""
    if expected_size is not None and size != expected_size:
        raise errors.IntegrityError(
            f"{where} has {size} bytes but the manifest says {expected_size}: "
            "the item was changed after the dataset was frozen"
        )
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


def _is_local_write_error(exc: BaseException) -> bool:
    # Network failures are OSErrors too (ECONNRESET...); only these errnos are about the disk.
    return (
        isinstance(exc, OSError)
        and not isinstance(exc, errors.DtoolS3Error)
        and exc.errno in _LOCAL_WRITE_ERRORS
    )


def _local_write_error(exc: BaseException, directory: Path, where: str) -> errors.LocalFileError:
    reason, fix = _LOCAL_WRITE_ERRORS[getattr(exc, "errno", errno.ENOSPC)]
    return errors.LocalFileError(
        f"cannot write to {directory} while downloading {where}: {reason}; {fix}, or set "
        "DTOOL_CACHE_DIRECTORY to a directory on another disk"
    )


@contextmanager
def _local_writes(directory: Path, where: str) -> Iterator[None]:
    """Turn disk-full and permission errors of local file operations into one-line errors."""
    try:
        yield
    except OSError as exc:
        if _is_local_write_error(exc):
            raise _local_write_error(exc, directory, where) from exc
        raise
