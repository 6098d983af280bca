"""Checking a frozen dataset against its manifest: stored metadata, ETags, or every byte again.

Problems are returned as lines that start with their kind and the item's relpath (``missing
item``, ``unexpected item``, ``size differs``, ``checksum differs``, ``ETag differs``, ``content
differs``), for :func:`dtool_s3_core.api.verify_dataset` and ``dtool s3 verify``.
"""

from __future__ import annotations

from functools import partial

import dtoolcore

from .. import errors
from .._dataset.dataset import S3Dataset
from .._format import validate
from .._s3.transfer import check_content, hash_object
from .results import Progress, quiet
from .sources import S3Source


def verify_s3(
    dataset: S3Dataset, deep: bool, etags: bool, progress: Progress | None = None
) -> list[str]:
    """Problems of a frozen S3 dataset (see :func:`dtool_s3_core.api.verify_dataset`)."""
    source = S3Source(dataset)
    entries = source.entries()
    stored = dataset.items(fresh=True)
    problems = [f"missing item: {entries[i].relpath}" for i in sorted(set(entries) - set(stored))]
    problems += [f"unexpected item: {stored[i].handle}" for i in sorted(set(stored) - set(entries))]
    common = sorted(set(stored) & set(entries), key=lambda i: entries[i].relpath)
    prefix = dataset.layout.data_prefix
    listed = (
        {info.key[len(prefix) :]: info.etag for info in dataset.client.list_objects(prefix)}
        if etags
        else {}
    )
    # Checksums are the metadata each object carries now (the first question HEADs every item,
    # concurrently), not the manifest's; an object without checksum metadata differs too.
    for ident in common:
        entry = entries[ident]
        etag = listed.get(ident, "")
        if stored[ident].size != entry.size:
            problems.append(f"size differs: {entry.relpath}")
        elif dataset.inventory.stored_checksum(stored[ident].handle) != entry.md5:
            problems.append(f"checksum differs: {entry.relpath}")
        elif validate.MD5_RE.match(etag) and etag != entry.md5:
            problems.append(f"ETag differs: {entry.relpath}")
    if not deep:
        return problems
    report = quiet(progress)
    report.start(len(common), sum(entries[i].size for i in common), 0)

    def rehash(ident: str) -> str | None:
        entry = entries[ident]
        key = dataset.layout.item(ident)
        md5, size = hash_object(dataset.client, key, report.advance)
        report.item_done()
        try:
            check_content(dataset.where(key), md5, size, entry.md5, entry.size)
        except errors.IntegrityError as exc:
            return f"content differs: {entry.relpath}: {exc}"
        return None

    found = dataset.run_all([partial(rehash, i) for i in common])
    return problems + [p for p in found if p is not None]


def verify_local(dataset: dtoolcore.DataSet) -> list[str]:
    """Problems of a local frozen dataset (dtoolcore hashes every file: always a deep check)."""
    problems: list[str] = []
    actual = dataset.generate_manifest()["items"]
    for ident in sorted(set(dataset.identifiers) - set(actual)):
        problems.append(f"missing item: {dataset.item_properties(ident)['relpath']}")
    for ident in sorted(set(actual) - set(dataset.identifiers)):
        problems.append(f"unexpected item: {actual[ident]['relpath']}")
    for ident in sorted(set(actual) & set(dataset.identifiers)):
        expected = dataset.item_properties(ident)
        if actual[ident]["size_in_bytes"] != expected["size_in_bytes"]:
            problems.append(f"size differs: {expected['relpath']}")
        elif actual[ident]["hash"] != expected["hash"]:
            problems.append(f"checksum differs: {expected['relpath']}")
    return problems
