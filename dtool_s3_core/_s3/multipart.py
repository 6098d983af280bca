"""Multipart uploads: the one writer of parts, for uploads, relayed copies and server-side copies.

:class:`MultipartUpload` owns one upload's life: created with the item's metadata, parts sent
or copied, then completed, or aborted if anything failed or was interrupted (so no half-written
upload lingers).
:func:`write_parts` feeds it from any reader (a local file, another server's response body),
several parts in flight within a byte budget, through the fast transport where there is one.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any

from .. import errors
from .._format.uri import object_url
from .checksums import multipart_etag
from .client import S3Client
from .flow import ByteBudget, OnBytes, report
from .transport import bodies

logger = logging.getLogger(__name__)


class MultipartUpload:
    """One multipart upload of ``key``; a ``with`` block aborts it when the block fails."""

    def __init__(self, client: S3Client, key: str, metadata: dict[str, str]) -> None:
        self.client = client
        self.key = key
        response = client.call("create_multipart_upload", key, Metadata=metadata)
        self.upload_id = str(response["UploadId"])
        self._etags: dict[int, str] = {}

    def __enter__(self) -> MultipartUpload:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            self.abort()

    def send_part(self, number: int, data: bytes) -> None:
        """Store part ``number`` (``Content-MD5`` checked by the server)."""
        etag = bodies(self.client).upload_part(self.key, self.upload_id, number, data)
        self._etags[number] = etag

    def copy_part(self, number: int, source: dict[str, str], first: int, last: int) -> None:
        """Have the server copy bytes ``first`` to ``last`` of ``source`` into part ``number``."""
        response = self.client.call(
            "upload_part_copy",
            self.key,
            UploadId=self.upload_id,
            PartNumber=number,
            CopySource=source,
            CopySourceRange=f"bytes={first}-{last}",
        )
        self._etags[number] = str(response["CopyPartResult"]["ETag"])

    def complete(self) -> str:
        """Complete the upload from its parts and return the object's ETag.

        CompleteMultipartUpload is the one upload request that cannot simply be sent again: when
        its answer is lost (a read timeout while the server assembles a large object, a cut
        connection), the server may have completed the upload already, and every retry then
        finds no upload (404 NoSuchUpload; moto answers 500). So a failed completion looks at
        the object: if it carries the ETag that exactly these parts make, the upload did
        complete.
        """
        parts = [{"PartNumber": n, "ETag": self._etags[n]} for n in sorted(self._etags)]
        try:
            response = self.client.call(
                "complete_multipart_upload",
                self.key,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": parts},
            )
        except errors.DtoolS3Error as exc:
            etag = multipart_etag([self._etags[n] for n in sorted(self._etags)])
            if etag is None or self._stored_etag() != etag:
                raise
            logger.info(
                "%s: the server completed the upload, but its answer was lost (%s)",
                object_url(self.client.bucket, self.key),
                exc,
            )
            return etag
        return str(response.get("ETag", "")).strip('"')

    def _stored_etag(self) -> str | None:
        try:
            head = self.client.exists(self.key)
        except errors.DtoolS3Error:
            return None
        return None if head is None else str(head.get("ETag", "")).strip('"')

    def abort(self) -> None:
        try:
            self.client.call("abort_multipart_upload", self.key, UploadId=self.upload_id)
        except errors.DtoolS3Error as exc:
            logger.warning(
                "could not abort the multipart upload of %s: %s",
                object_url(self.client.bucket, self.key),
                exc,
            )


def write_parts(
    client: S3Client,
    key: str,
    metadata: dict[str, str],
    read: Callable[[int], bytes],
    budget: ByteBudget,
    on_bytes: OnBytes | None = None,
    before_completing: Callable[[], None] | None = None,
) -> str:
    """Upload what ``read(part_size)`` gives until it gives nothing; return the object's ETag.

    Up to 8 parts are in flight (fewer with a lower ``max_concurrency``), each held in memory
    against ``budget`` until the server has it.

    :param on_bytes: told the size of each part once the server has accepted it
    :param before_completing: called once every part is stored; raising there aborts the upload
                              (e.g. when the bytes read do not match a manifest)
    :raises Cancelled: once the client's transfers are cancelled (the upload is aborted)
    """
    part_size = client.config.part_size
    # awscrt copies a body into a buffer of its own: a part in flight there counts twice.
    held = 2 * part_size if client.engine is not None else part_size
    workers = max(1, min(8, client.config.max_concurrency))
    with MultipartUpload(client, key, metadata) as upload:

        def send(number: int, data: bytes) -> None:
            try:
                upload.send_part(number, data)
            finally:
                budget.release(held)
            report(on_bytes, len(data))

        futures: list[Future[Any]] = []
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dtool-s3-part") as pool:
            try:
                while not any(f.done() and f.exception() for f in futures):
                    client.cancel.check()
                    budget.acquire(held)
                    try:
                        data = read(part_size)
                    except BaseException:
                        budget.release(held)
                        raise
                    if not data:
                        budget.release(held)
                        break
                    futures.append(pool.submit(send, len(futures) + 1, data))
                for future in futures:
                    future.result()
            except KeyboardInterrupt:
                # Here in the caller's own thread: the parts in flight stop before the abort.
                client.cancel.set()
                raise
        if before_completing is not None:
            before_completing()
        return upload.complete()


def copy_in_parts(
    client: S3Client,
    key: str,
    source: dict[str, str],
    size: int,
    metadata: dict[str, str],
    part_size: int,
) -> str:
    """Have the server copy ``source`` (``size`` bytes) to ``key`` in parts; return the ETag."""
    with MultipartUpload(client, key, metadata) as upload:
        for number, first in enumerate(range(0, size, part_size), start=1):
            client.cancel.check()
            upload.copy_part(number, source, first, min(first + part_size, size) - 1)
        return upload.complete()


#: Pages of a listing of unfinished uploads before it is stopped as endless (1000 uploads a page).
MAX_UPLOAD_PAGES = 10_000


def unfinished_uploads(client: S3Client, prefix: str) -> list[tuple[str, str]]:
    """Return (key, upload id) of every multipart upload in progress under ``prefix``.

    :raises TransferFailed: for a listing that does not end (a truncated page without markers)
        or that names a key outside ``prefix``
    """
    found: list[tuple[str, str]] = []
    markers: dict[str, str] = {}
    for _ in range(MAX_UPLOAD_PAGES):
        response = client.call("list_multipart_uploads", Prefix=prefix, **markers)
        uploads = [(str(u["Key"]), str(u["UploadId"])) for u in response.get("Uploads", [])]
        outside = next((key for key, _ in uploads if not key.startswith(prefix)), None)
        if outside is not None:
            # Aborting it would end an upload of another dataset.
            raise errors.TransferFailed(
                f"the server answered the listing of the uploads under "
                f"{object_url(client.bucket, prefix)} with the key {outside!r}, which is outside "
                "it: the server is at fault; report it to its operator"
            )
        found += uploads
        if not response.get("IsTruncated"):
            return found
        following = {
            "KeyMarker": str(response.get("NextKeyMarker") or ""),
            "UploadIdMarker": str(response.get("NextUploadIdMarker") or ""),
        }
        if not following["KeyMarker"] or following == markers:
            break
        markers = following
    raise errors.TransferFailed(
        f"the server did not end its listing of the uploads under "
        f"{object_url(client.bucket, prefix)}: the server is at fault; report it to its operator"
    )


def abort_upload(client: S3Client, key: str, upload_id: str) -> None:
    """Abort one multipart upload; one that has ended meanwhile is no error."""
    with contextlib.suppress(errors.ObjectNotFound):
        client.call("abort_multipart_upload", key, UploadId=upload_id)
