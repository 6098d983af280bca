"""The copy engine: a frozen dataset (local or S3) to an S3 base URI, with explicit settings.

Each side has its own :class:`~.config.S3Config`, so two buckets of one name on two endpoints,
or two sets of credentials, are no problem. Items are copied concurrently and every copy is
verified against the source manifest:

* within one service (same endpoint and credentials) the server copies each object
  (CopyObject; UploadPartCopy above 5 GiB) and no byte passes through this process; the copy's
  ETag must equal the manifest's MD5 where the ETag is an MD5, otherwise the copy is hashed;
* otherwise each item is read (verified) into a temporary file and uploaded from it, and the
  MD5 computed while uploading must equal the manifest's.

A mismatch stops the copy with one line; the destination stays a proto dataset, which a copy
with ``resume=True`` finishes. The README, tags, overlays and annotations follow, then the
freeze, which keeps the source's ``frozen_at``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

from . import errors, validate
from .client import S3Client
from .dataset import S3Dataset, item_metadata
from .sources import Source
from .transfer import abort_multipart

logger = logging.getLogger(__name__)

GiB = 1024**3
COPY_OBJECT_LIMIT = 5 * GiB
COPY_PART_SIZE = GiB // 2


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


def copy_to_s3(source: Source, dest: S3Dataset, resume: bool = False) -> CopyResult:
    """Copy a frozen ``source`` into ``dest`` (an S3 dataset with the source's UUID).

    :param resume: finish an interrupted copy (a proto dataset with that UUID); items already
                   present with the right size and MD5 are kept; a frozen one is left as it is
    :raises DatasetStateError: if the destination exists and ``resume`` is False
    """
    existing = dest.admin_metadata(fresh=True)
    entries = source.entries()
    total = sum(e.size for e in entries.values())
    server_side = source.s3 is not None and _same_service(source.s3.client, dest.client)

    def result(copied: int, copied_bytes: int, skipped: int) -> CopyResult:
        return CopyResult(
            uri=dest.uri,
            name=str(source.admin["name"]),
            uuid=dest.uuid,
            item_count=len(entries),
            size_in_bytes=total,
            copied_items=copied,
            copied_bytes=copied_bytes,
            skipped_items=skipped,
            resumed=existing is not None,
            server_side=server_side,
        )

    if existing is not None and not resume:
        state = "a frozen copy" if existing.get("type") == "dataset" else "an interrupted copy"
        raise errors.DatasetStateError(
            f"a dataset already exists at {dest.uri} ({state}): copy with resume=True "
            "('dtool cp --resume') to finish or reuse it, or delete it first"
        )
    if existing is not None and existing.get("type") == "dataset":
        logger.info("%s is already a complete copy; nothing to do", dest.uri)
        return result(0, 0, len(entries))
    if existing is None:
        existing_admin = {**source.admin, "type": "protodataset"}
        dest.create_proto(existing_admin, checked=True)
    else:
        existing_admin = existing
    present = dest.items(fresh=True) if existing is not None else {}
    todo = [
        e
        for ident, e in entries.items()
        if ident not in present
        or present[ident].size != e.size
        or present[ident].checksum not in (None, e.md5)
    ]
    logger.info(
        "copying %d of %d items to %s (%s)",
        len(todo),
        len(entries),
        dest.uri,
        "server-side" if server_side else "through this host",
    )
    with tempfile.TemporaryDirectory(prefix="dtool-s3-copy-") as staging:
        copy_one: Callable[[validate.Entry], None]
        if server_side:
            assert source.s3 is not None
            src = source.s3
            copy_one = lambda entry: _server_copy(src, dest, entry)  # noqa: E731
        else:
            copy_one = lambda entry: _stream_copy(source, dest, entry, Path(staging))  # noqa: E731
        dest.run_all([partial(copy_one, e) for e in todo])
    _copy_metadata(source, dest)
    dest.freeze(frozen_at=float(source.admin["frozen_at"]), admin=existing_admin)
    return result(len(todo), sum(e.size for e in todo), len(entries) - len(todo))


def _same_service(a: S3Client, b: S3Client) -> bool:
    return a.config.client_key() == b.config.client_key()


def _copy_metadata(source: Source, dest: S3Dataset) -> None:
    dest.put_text(dest.layout.readme, source.readme())
    for tag in source.tags():
        dest.client.put_bytes(dest.layout.tag(tag), b"")
    for name, overlay in source.overlays().items():
        body = json.dumps(overlay, indent=2).encode("utf-8")
        dest.client.put_bytes(dest.layout.overlay(name), body)
    for name, annotation in source.annotations().items():
        body = json.dumps(annotation, indent=2).encode("utf-8")
        dest.client.put_bytes(dest.layout.annotation(name), body)


def _stream_copy(source: Source, dest: S3Dataset, entry: validate.Entry, staging: Path) -> None:
    path, temporary = source.local_file(entry, staging)
    try:
        uploaded = dest.upload(path, entry.relpath)
    finally:
        if temporary:
            path.unlink(missing_ok=True)
    if uploaded.md5 != entry.md5 or uploaded.size != entry.size:
        raise errors.IntegrityError(
            f"{path} has MD5 {uploaded.md5} ({uploaded.size} bytes) but the source manifest says "
            f"{entry.md5} ({entry.size} bytes) for {validate.shown(entry.relpath)}: the source "
            "item is corrupted; the copy stays a proto dataset"
        )


def _server_copy(source: S3Dataset, dest: S3Dataset, entry: validate.Entry) -> None:
    copy_source = {"Bucket": source.bucket, "Key": source.layout.item(entry.identifier)}
    key = dest.layout.item(entry.identifier)
    metadata = item_metadata(entry.relpath, entry.md5)
    if entry.size <= COPY_OBJECT_LIMIT:
        response = dest.client.call(
            "copy_object",
            key,
            CopySource=copy_source,
            MetadataDirective="REPLACE",
            Metadata=metadata,
        )
        etag = str(response.get("CopyObjectResult", {}).get("ETag", "")).strip('"')
    else:
        etag = _copy_in_parts(dest.client, key, copy_source, entry.size, metadata)
    if not validate.MD5_RE.match(etag):
        # A multipart or encrypted object's ETag is no MD5: hash what the server made instead.
        etag = _hash_object(dest, key)
    if etag != entry.md5:
        raise errors.IntegrityError(
            f"the server-side copy of s3://{source.bucket}/{copy_source['Key']} has MD5 {etag} "
            f"but the source manifest says {entry.md5} ({validate.shown(entry.relpath)}): the "
            f"source item is corrupted; {dest.uri} stays a proto dataset"
        )
    dest.inventory.learn(entry.relpath, entry.md5)


def _hash_object(dest: S3Dataset, key: str) -> str:
    response = dest.client.call("get_object", key)
    md5 = hashlib.md5()
    for chunk in response["Body"].iter_chunks(1024 * 1024):
        md5.update(chunk)
    return md5.hexdigest()


def _copy_in_parts(
    client: S3Client, key: str, copy_source: dict[str, str], size: int, metadata: dict[str, str]
) -> str:
    upload_id = client.call("create_multipart_upload", key, Metadata=metadata)["UploadId"]
    try:
        parts = []
        for number, start in enumerate(range(0, size, COPY_PART_SIZE), start=1):
            end = min(start + COPY_PART_SIZE, size) - 1
            response = client.call(
                "upload_part_copy",
                key,
                UploadId=upload_id,
                PartNumber=number,
                CopySource=copy_source,
                CopySourceRange=f"bytes={start}-{end}",
            )
            parts.append({"PartNumber": number, "ETag": response["CopyPartResult"]["ETag"]})
        done = client.call(
            "complete_multipart_upload", key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
    except BaseException:
        abort_multipart(client, key, upload_id)
        raise
    return str(done.get("ETag", "")).strip('"')
