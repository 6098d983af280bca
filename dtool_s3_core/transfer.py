"""Moving item content: uploads with server-verified MD5s, verified downloads, background queues.

* Uploads up to ``multipart_threshold`` are read once into memory, hashed and sent with
  ``Content-MD5``. Larger files are hashed in a first pass (S3 wants the ``checksum`` metadata when
  the multipart upload is created), then sent in ``part_size`` parts, each with its own
  ``Content-MD5``; a failed multipart upload is aborted.
* Downloads stream into a temporary file next to the target while hashing, and are renamed into
  place only when size and MD5 match.
* :class:`TaskQueue` runs transfers in the background with a bounded window, so dtoolcore's
  item-by-item calls overlap; :meth:`TaskQueue.drain` is the barrier that raises every failure.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from . import errors
from .client import S3Client, retrying

logger = logging.getLogger(__name__)
_READ_CHUNK = 1024 * 1024


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


def upload_stream(
    client: S3Client,
    key: str,
    stream: BinaryIO,
    metadata: Callable[[str], dict[str, str]],
    part_slots: threading.Semaphore,
) -> Uploaded:
    """Upload an open binary file to ``key``; ``metadata(md5hex)`` gives the user metadata.

    :param part_slots: bounds how many part buffers exist at once across all uploads
    """
    config = client.config
    size = os.fstat(stream.fileno()).st_size
    if size <= config.multipart_threshold:
        with part_slots:
            body = stream.read()
            digest = hashlib.md5(body)
            client.call(
                "put_object",
                key,
                Body=body,
                ContentMD5=_b64(digest.digest()),
                Metadata=metadata(digest.hexdigest()),
            )
        return Uploaded(key, len(body), digest.hexdigest())
    md5hex, size = md5_of_stream(stream)
    stream.seek(0)
    upload_id = client.call("create_multipart_upload", key, Metadata=metadata(md5hex))["UploadId"]
    try:
        parts = _upload_parts(client, key, upload_id, stream, part_slots)
        client.call(
            "complete_multipart_upload",
            key,
            UploadId=upload_id,
            MultipartUpload={"Parts": parts},
        )
    except BaseException:
        abort_multipart(client, key, upload_id)
        raise
    return Uploaded(key, size, md5hex)


def _upload_parts(
    client: S3Client,
    key: str,
    upload_id: str,
    stream: BinaryIO,
    part_slots: threading.Semaphore,
) -> list[dict[str, Any]]:
    part_size = client.config.part_size
    workers = max(1, min(8, client.config.max_concurrency))
    futures: list[Future[dict[str, Any]]] = []

    def send(number: int, data: bytes) -> dict[str, Any]:
        try:
            response = client.call(
                "upload_part",
                key,
                UploadId=upload_id,
                PartNumber=number,
                Body=data,
                ContentMD5=_b64(hashlib.md5(data).digest()),
            )
        finally:
            part_slots.release()
        return {"PartNumber": number, "ETag": response["ETag"]}

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dtool-s3-part") as pool:
        number = 0
        while True:
            part_slots.acquire()
            data = stream.read(part_size)
            if not data:
                part_slots.release()
                break
            number += 1
            futures.append(pool.submit(send, number, data))
            if any(f.done() and f.exception() for f in futures):
                break
        return [f.result() for f in futures]


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
) -> Path:
    """Download ``key`` to ``target`` atomically, checking size and MD5 while streaming.

    :raises IntegrityError: if the content does not match what the manifest says
    :raises OSError: for local problems such as a full disk (the partial file is removed)
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    where = f"s3://{client.bucket}/{key}"

    def attempt() -> Path:
        response = client.call("get_object", key)
        body = response["Body"]
        md5 = hashlib.md5()
        size = 0
        fd, tmp_name = tempfile.mkstemp(prefix=target.name + ".", suffix=".part", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in body.iter_chunks(_READ_CHUNK):
                    md5.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
            if expected_size is not None and size != expected_size:
                raise errors.IntegrityError(
                    f"{where} has {size} bytes but the manifest says {expected_size}: "
                    "the item was changed after the dataset was frozen"
                )
            if expected_md5 is not None and md5.hexdigest() != expected_md5:
                raise errors.IntegrityError(
                    f"{where} has MD5 {md5.hexdigest()} but the manifest says {expected_md5}: "
                    "the item is corrupted in the bucket"
                )
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return target

    return retrying(attempt, client.config.max_attempts, where)


class TaskQueue:
    """Run callables on a thread pool with at most ``window`` pending; collect every failure."""

    def __init__(self, workers: int, window: int, name: str) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._slots = threading.BoundedSemaphore(window)
        self._lock = threading.Lock()
        self._pending: set[Future[Any]] = set()
        self._failures: list[BaseException] = []

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """Queue ``fn(*args)``; blocks while the window is full; fails fast after a failure."""
        self._raise_failures()
        self._slots.acquire()
        future = self._pool.submit(fn, *args)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._done)
        return future

    def _done(self, future: Future[Any]) -> None:
        with self._lock:
            self._pending.discard(future)
            exc = future.exception()
            if exc is not None:
                self._failures.append(exc)
        self._slots.release()

    def drain(self) -> None:
        """Wait for every queued task; raise the first failure, counting the others."""
        while True:
            with self._lock:
                pending = list(self._pending)
            if not pending:
                break
            for future in pending:
                future.exception()
        self._raise_failures()

    def _raise_failures(self) -> None:
        with self._lock:
            failures, self._failures = self._failures, []
        if not failures:
            return
        first = failures[0]
        if len(failures) > 1 and isinstance(first, errors.DtoolS3Error):
            more = f"{first} (and {len(failures) - 1} more transfers failed)"
            raise type(first)(more) from first
        raise first

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
