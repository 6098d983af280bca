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
with ``resume=True`` finishes. A resume verifies before it skips (see :mod:`.results`): it
refuses another dataset of the same UUID and a frozen copy that differs from the source, and
keeps of an interrupted copy only the items whose size, checksum metadata and ETag are right.
The README, tags, overlays and annotations follow, then the freeze, which keeps the source's
``frozen_at``.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from functools import partial
from pathlib import Path

from .. import errors
from .._dataset.dataset import S3Dataset
from .._format import validate
from .._format.keys import IDENTIFIER_RE
from .._format.manifest import Entry, item_metadata
from .._format.validate import MD5_RE
from .._s3.cancel import Cancel
from .._s3.checksums import CHUNK
from .._s3.client import ObjectInfo, S3Client
from .._s3.flow import ByteBudget, HighWater, OnBytes, memory_budget
from .._s3.multipart import copy_in_parts, write_parts
from .._s3.pace import PacedBody
from .._s3.retry import retrying
from .._s3.transfer import hash_object, put_body
from .._s3.transport import paced
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
from .sources import Source

logger = logging.getLogger(__name__)

GiB = 1024**3
COPY_OBJECT_LIMIT = 5 * GiB
COPY_PART_SIZE = GiB // 2


def copy_to_s3(
    source: Source,
    dest: S3Dataset,
    resume: bool = False,
    progress: Progress | None = None,
    resume_with: str = "resume=True",
) -> CopyResult:
    """Copy a frozen ``source`` into ``dest`` (an S3 dataset with the source's UUID).

    :param progress: told what is copied as it goes
    :param resume_with: how the user asks for a resume, named in messages
    :param resume: finish an interrupted copy (a proto dataset of this same dataset): intact
                   items are kept, the others copied again, items the source does not have
                   removed; a frozen copy is checked item by item and otherwise left as it is
    :raises LocalFileError: if an item file of a local source is no readable regular file
    :raises DatasetStateError: if the destination exists and ``resume`` is False, holds another
                               dataset of that UUID, or is a frozen copy that differs; if the
                               source has items no local disk could hold together
    """
    entries = source.entries()
    source.check_local_names(dest.uri)
    # Before any request: a FIFO or unreadable file among the items leaves nothing behind.
    source.check_items()
    existing = dest.admin_metadata(fresh=True)
    server_side = source.s3 is not None and _same_service(source.s3.client, dest.client)

    if existing is not None:
        check_identity(dest.uri, source.admin, existing)
        frozen = existing.get("type") == "dataset"
        if not resume:
            raise exists_error(dest.uri, frozen, resume_with)
        if frozen:
            check_frozen_copy(
                dest.uri, entries, dest.entries(), partial(_frozen_items, dest, entries)
            )
            logger.info("%s is already a complete copy; nothing to do", dest.uri)
            return copy_result(
                dest.uri, source.admin, entries, [], resumed=True, server_side=server_side
            )
        todo = _resume_plan(dest, entries)
    else:
        dest.create_proto({**source.admin, "type": "protodataset"}, checked=True)
        todo = list(entries.values())
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
    # The source's admin metadata, not the destination's: what is frozen is exactly the source.
    proto_admin = {**source.admin, "type": "protodataset"}
    dest.freeze(frozen_at=float(source.admin["frozen_at"]), admin=proto_admin)
    return copy_result(
        dest.uri, source.admin, entries, todo, resumed=existing is not None, server_side=server_side
    )


def _listed(dest: S3Dataset) -> dict[str, ObjectInfo]:
    """The item objects of ``dest`` by identifier, from one listing (sizes and ETags)."""
    prefix = dest.layout.data_prefix
    found = {info.key[len(prefix) :]: info for info in dest.client.list_objects(prefix)}
    # Other keys are no items (the inventory ignores them too, with a warning).
    return {ident: info for ident, info in found.items() if IDENTIFIER_RE.match(ident)}


def _frozen_items(dest: S3Dataset, entries: dict[str, Entry]) -> dict[str, Stored]:
    """What a frozen destination (whose manifest is the source's) holds: one listing, few HEADs.

    A plain-MD5 ETag proves the bytes, and what dtool reads as a frozen item's checksum is its
    manifest's (already compared); only where the ETag is no MD5 (multipart, encryption) does
    a HEAD read the stored checksum metadata.
    """
    listed = _listed(dest)
    unsure = [i for i, info in listed.items() if i in entries and not MD5_RE.match(info.etag)]
    heads = dest.run_all([partial(dest.stat, entries[i].relpath) for i in unsure])
    checksums: dict[str, str | None] = {i: entries[i].md5 for i in listed if i in entries}
    checksums.update({i: h.checksum if h else None for i, h in zip(unsure, heads, strict=True)})
    return {
        ident: Stored(info.size, checksums.get(ident), info.etag) for ident, info in listed.items()
    }


def _resume_plan(dest: S3Dataset, entries: dict[str, Entry]) -> list[Entry]:
    """The items an interrupted copy still needs; first remove what the source does not have.

    An item is kept only if its size, checksum metadata and (where a plain MD5) ETag are the
    source manifest's; the others are copied again over their keys.
    """
    etags = {ident: info.etag for ident, info in _listed(dest).items()}
    present = dest.items(fresh=True)  # the checksum metadata: HEADs only for unknown items
    stored = {
        ident: Stored(item.size, item.checksum, etags.get(ident, ""), item.handle)
        for ident, item in present.items()
    }
    foreign = [stored[ident].handle for ident in sorted(set(stored) - set(entries))]
    if foreign:
        logger.info("removing %d items of %s that the source does not have", len(foreign), dest.uri)
        dest.remove(foreign)
    # Item metadata left in the proto dataset would become overlays at the freeze, over the
    # source's (which are written whole): an interrupted copy of ours never writes any.
    fragments = [info.key for info in dest.client.list_objects(dest.layout.fragments_prefix)]
    dest.client.delete_many(fragments)
    return [e for ident, e in entries.items() if item_problem(e, stored.get(ident)) is not None]


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
        answer = source.client.call("get_object", src_key)["Body"]
        with paced(source.client, answer, source.where(src_key)) as body:
            relay_body(body)

    def relay_body(body: PacedBody) -> None:
        moved = progress.attempt()
        # Never more than one byte beyond the manifest's size: a body that lies costs nothing.
        if entry.size <= dest.config.part_size:
            budget.acquire(entry.size)
            try:
                data = _read_part(body, entry.size + 1, dest.client.cancel)
                check(hashlib.md5(data).hexdigest(), len(data))
                put_body(dest.client, key, data, metadata)
            finally:
                budget.release(entry.size)
            moved(len(data))
            return
        md5, size = hashlib.md5(), 0

        def read(count: int) -> bytes:
            nonlocal size
            data = _read_part(body, min(count, entry.size + 1 - size), dest.client.cancel)
            md5.update(data)
            size += len(data)
            return data

        def before_completing() -> None:
            check(md5.hexdigest(), size)

        write_parts(dest.client, key, metadata, read, budget, moved, before_completing)

    retrying(attempt, source.config, source.where(src_key))
    dest.inventory.learn(entry.relpath, entry.md5)


def _read_part(body: PacedBody, size: int, cancel: Cancel) -> bytes:
    """Read up to ``size`` bytes of a response body (fewer only at its end).

    :param cancel: the destination's: an interrupted copy stops reading at the next chunk
    """
    chunks, got = [], 0
    while got < size:
        cancel.check()
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
