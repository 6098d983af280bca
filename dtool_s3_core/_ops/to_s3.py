"""The copy engine: a frozen dataset (local or S3) to an S3 base URI, with explicit settings.

Each side has its own :class:`~.config.S3Config`, so two buckets of one name on two endpoints,
or two sets of credentials, are no problem. Items are copied concurrently and every copy is
verified against the source manifest:

* within one service (same endpoint and credentials) the server copies each object
  (CopyObject; UploadPartCopy above 5 GiB) and no byte passes through this process; the copy's
  ETag must equal the manifest's MD5 where the ETag is an MD5, otherwise the copy is hashed;
* from another S3 service each item is relayed part by part through memory (no local file):
  the parts' MD5 must add up to the manifest's before the upload is completed;
* from a local dataset each file is uploaded, and the MD5 computed while uploading must equal
  the manifest's.

A :class:`Progress` receives the bytes as they are sent (for a server-side copy: as each object
is copied).

A mismatch stops the copy with one line; the destination stays a proto dataset, which a copy
with ``resume=True`` finishes. The README, tags, overlays and annotations follow, then the
freeze, which keeps the source's ``frozen_at``.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

from .. import errors
from .._dataset.dataset import S3Dataset
from .._format import validate
from .._format.manifest import Entry, item_metadata
from .._s3.checksums import CHUNK
from .._s3.client import S3Client
from .._s3.flow import ByteBudget, HighWater, OnBytes, memory_budget
from .._s3.multipart import copy_in_parts, write_parts
from .._s3.retry import retrying
from .._s3.transfer import hash_object, put_body
from .results import CopyResult, Progress, copy_result, exists_error, quiet
from .sources import Source

logger = logging.getLogger(__name__)

GiB = 1024**3
COPY_OBJECT_LIMIT = 5 * GiB
COPY_PART_SIZE = GiB // 2


def copy_to_s3(
    source: Source, dest: S3Dataset, resume: bool = False, progress: Progress | None = None
) -> CopyResult:
    """Copy a frozen ``source`` into ``dest`` (an S3 dataset with the source's UUID).

    :param progress: told what is copied as it goes
    :param resume: finish an interrupted copy (a proto dataset with that UUID); items already
                   present with the right size and MD5 are kept; a frozen one is left as it is
    :raises DatasetStateError: if the destination exists and ``resume`` is False
    """
    existing = dest.admin_metadata(fresh=True)
    entries = source.entries()
    server_side = source.s3 is not None and _same_service(source.s3.client, dest.client)

    if existing is not None and not resume:
        raise exists_error(
            dest.uri, existing.get("type") == "dataset", "resume=True ('dtool cp --resume')"
        )
    if existing is not None and existing.get("type") == "dataset":
        logger.info("%s is already a complete copy; nothing to do", dest.uri)
        return copy_result(
            dest.uri, source.admin, entries, [], resumed=True, server_side=server_side
        )
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
    report = quiet(progress)
    report.start(len(todo), sum(e.size for e in todo), len(entries) - len(todo))
    budget = memory_budget(dest.config)
    with tempfile.TemporaryDirectory(prefix="dtool-s3-copy-") as staging:

        def copy_one(entry: Entry) -> None:
            if server_side:
                assert source.s3 is not None
                _server_copy(source.s3, dest, entry)
                report.advance(entry.size)
            elif source.s3 is not None:
                _relay(source.s3, dest, entry, budget, report.advance)
            else:
                _stream_copy(source, dest, entry, Path(staging), report.advance)
            report.item_done()

        dest.run_all([partial(copy_one, e) for e in todo])
    _copy_metadata(source, dest)
    dest.freeze(frozen_at=float(source.admin["frozen_at"]), admin=existing_admin)
    resumed = existing is not None
    return copy_result(
        dest.uri, source.admin, entries, todo, resumed=resumed, server_side=server_side
    )


def _same_service(a: S3Client, b: S3Client) -> bool:
    return a.config.client_key() == b.config.client_key()


def _copy_metadata(source: Source, dest: S3Dataset) -> None:
    dest.put_readme(source.readme())
    for tag in source.tags():
        dest.put_tag(tag)
    for name, overlay in source.overlays().items():
        dest.put_overlay(name, overlay)
    for name, annotation in source.annotations().items():
        dest.put_annotation(name, annotation)


def _stream_copy(
    source: Source, dest: S3Dataset, entry: Entry, staging: Path, on_bytes: OnBytes
) -> None:
    path, temporary = source.local_file(entry, staging)
    try:
        uploaded = dest.upload(path, entry.relpath, on_bytes)
    finally:
        if temporary:
            path.unlink(missing_ok=True)
    if uploaded.md5 != entry.md5 or uploaded.size != entry.size:
        raise errors.IntegrityError(
            f"{path} has MD5 {uploaded.md5} ({uploaded.size} bytes) but the source manifest says "
            f"{entry.md5} ({entry.size} bytes) for {validate.shown(entry.relpath)}: the source "
            "item is corrupted; the copy stays a proto dataset"
        )


def _relay(
    source: S3Dataset, dest: S3Dataset, entry: Entry, budget: ByteBudget, on_bytes: OnBytes
) -> None:
    """Copy an item between services through memory, part by part (no local file).

    The parts go up as they are read, through the destination's fast transport where it has
    one; the MD5 of everything read must be the manifest's before the upload is completed.
    """
    src_key = source.layout.item(entry.identifier)
    key = dest.layout.item(entry.identifier)
    metadata = item_metadata(entry.relpath, entry.md5)
    progress = HighWater(on_bytes)

    def check(md5: str, size: int) -> None:
        if md5 != entry.md5 or size != entry.size:
            raise errors.IntegrityError(
                f"{source.where(src_key)} has MD5 {md5} ({size} bytes) but the source manifest "
                f"says {entry.md5} ({entry.size} bytes) for {validate.shown(entry.relpath)}: the "
                f"source item is corrupted; {dest.uri} stays a proto dataset"
            )

    def attempt() -> None:
        body = source.client.call("get_object", src_key)["Body"]
        moved = progress.attempt()
        if entry.size <= dest.config.part_size:
            budget.acquire(entry.size)
            try:
                data = _read_part(body, entry.size + 1)
                check(hashlib.md5(data).hexdigest(), len(data))
                put_body(dest.client, key, data, metadata)
            finally:
                budget.release(entry.size)
            moved(len(data))
            return
        md5, size = hashlib.md5(), 0

        def read(count: int) -> bytes:
            nonlocal size
            data = _read_part(body, count)
            md5.update(data)
            size += len(data)
            return data

        def before_completing() -> None:
            check(md5.hexdigest(), size)

        write_parts(dest.client, key, metadata, read, budget, moved, before_completing)

    retrying(attempt, source.config.max_attempts, source.where(src_key))
    dest.inventory.learn(entry.relpath, entry.md5)


def _read_part(body: Any, size: int) -> bytes:
    """Read up to ``size`` bytes of a response body (fewer only at its end)."""
    chunks, got = [], 0
    while got < size:
        chunk = body.read(min(size - got, CHUNK))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _server_copy(source: S3Dataset, dest: S3Dataset, entry: Entry) -> None:
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
        etag = copy_in_parts(dest.client, key, copy_source, entry.size, metadata, COPY_PART_SIZE)
    if not validate.MD5_RE.match(etag):
        # A multipart or encrypted object's ETag is no MD5: hash what the server made instead.
        etag, _ = hash_object(dest.client, key)
    if etag != entry.md5:
        raise errors.IntegrityError(
            f"the server-side copy of s3://{source.bucket}/{copy_source['Key']} has MD5 {etag} "
            f"but the source manifest says {entry.md5} ({validate.shown(entry.relpath)}): the "
            f"source item is corrupted; {dest.uri} stays a proto dataset"
        )
    dest.inventory.learn(entry.relpath, entry.md5)
