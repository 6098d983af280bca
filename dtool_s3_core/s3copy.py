"""Copying a dataset between two buckets of one S3 service without moving its bytes.

dtoolcore's copy hands every item to the destination as a local file, so an S3 -> S3 copy would
download and re-upload every byte. When the same endpoint and credentials reach both buckets,
the server copies each object itself (CopyObject; UploadPartCopy ranges above its 5 GiB limit),
concurrently. dtoolcore's own copy then runs as usual: it finds every item already present, so
it only copies the README, tags, overlays and annotations, and freezes.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import dtoolcore

from .broker import S3StorageBroker
from .client import S3Client
from .config import resolve_config
from .keys import encode_handle, identifier
from .transfer import abort_multipart
from .uri import parse_uri

logger = logging.getLogger(__name__)

GiB = 1024**3
COPY_OBJECT_LIMIT = 5 * GiB
COPY_PART_SIZE = GiB // 2


def same_service(src_uri: str, dest_base_uri: str, config_path: str | None = None) -> bool:
    """True when both S3 locations are reached with one endpoint and one set of credentials."""
    if not (src_uri.startswith("s3://") and dest_base_uri.startswith("s3://")):
        return False
    src = resolve_config(parse_uri(src_uri).bucket, config_path)
    dest = resolve_config(parse_uri(dest_base_uri).bucket, config_path)
    return src.client_key() == dest.client_key()


def copy_within_service(
    dataset: dtoolcore.DataSet,
    dest_base_uri: str,
    resume: bool = False,
    config_path: str | None = None,
) -> str:
    """Copy a frozen S3 dataset to another bucket of the same service; return the new URI.

    :param resume: finish an interrupted copy, skipping items present with the right size
    """
    if resume:
        dest_uri = S3StorageBroker.generate_uri(dataset.name, dataset.uuid, dest_base_uri)
        proto = dtoolcore.ProtoDataSet.from_uri(dest_uri, config_path)
    else:
        proto = dtoolcore._copy_create_proto_dataset(dataset, dest_base_uri, config_path)
    source: S3StorageBroker = dataset._storage_broker
    dest: S3StorageBroker = proto._storage_broker
    present = {}
    if resume:
        present = {identifier(h): dest.get_size_in_bytes(h) for h in dest.iter_item_handles()}
    todo = [
        (ident, props)
        for ident, props in ((i, dataset.item_properties(i)) for i in dataset.identifiers)
        if present.get(ident) != props["size_in_bytes"]
    ]
    logger.info("server-side copy of %d items to s3://%s/%s", len(todo), dest.bucket, dest.uuid)
    workers = max(1, dest._config.max_concurrency)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dtool-s3-copy") as pool:
        for future in [pool.submit(_copy_item, source, dest, i, p) for i, p in todo]:
            future.result()
    dtoolcore._copy_content(dataset, proto)
    if resume:
        proto._admin_metadata["frozen_at"] = dataset._admin_metadata["frozen_at"]
    proto.freeze()
    return str(proto.uri)


def _copy_item(
    source: S3StorageBroker, dest: S3StorageBroker, ident: str, props: dict[str, Any]
) -> None:
    relpath, md5, size = props["relpath"], props["hash"], int(props["size_in_bytes"])
    copy_source = {"Bucket": source.bucket, "Key": source._layout.item(ident)}
    key = dest._layout.item(ident)
    metadata = {"handle": encode_handle(relpath), "checksum": md5}
    if size <= COPY_OBJECT_LIMIT:
        dest._client.call(
            "copy_object",
            key,
            CopySource=copy_source,
            MetadataDirective="REPLACE",
            Metadata=metadata,
        )
    else:
        _copy_in_parts(dest._client, key, copy_source, size, metadata)
    dest._inventory.learn(relpath, md5)


def _copy_in_parts(
    client: S3Client, key: str, copy_source: dict[str, str], size: int, metadata: dict[str, str]
) -> None:
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
        client.call(
            "complete_multipart_upload", key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
    except BaseException:
        abort_multipart(client, key, upload_id)
        raise
