"""The native engine against Ceph RGW, which enforces signatures and Content-MD5.

Ceph Pacific accepts and stores a wrong ``x-amz-checksum-*`` but refuses a wrong Content-MD5,
so the Content-MD5 the awscrt engine sends is what protects an upload there.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import pytest

from dtool_s3_core import errors
from dtool_s3_core._s3 import transfer
from dtool_s3_core._s3.client import S3Client
from dtool_s3_core._s3.flow import memory_budget
from dtool_s3_core.config import MiB, override, resolve_config
from tests.support.ceph import CephServer


def crt_client(ceph: CephServer, bucket: str) -> S3Client:
    with override(
        bucket,
        endpoint_url=ceph.endpoint_url,
        access_key_id=ceph.access_key,
        secret_access_key=ceph.secret_key,
        engine="crt",
        multipart_threshold=5 * MiB,
        part_size=5 * MiB,
    ):
        client = S3Client(resolve_config(bucket))
    assert client.engine is not None
    return client


def test_wrong_content_md5_is_refused_through_crt(ceph: CephServer, bucket: str) -> None:
    client = crt_client(ceph, bucket)
    engine = client.engine
    assert engine is not None
    wrong = base64.b64encode(hashlib.md5(b"what was meant").digest()).decode()
    with pytest.raises(errors.IntegrityError, match=r"\(BadDigest\)"):
        engine.send("PutObject", "PUT", "item", headers={"Content-MD5": wrong}, body=b"sent")
    assert client.exists("item") is None
    upload_id = client.call("create_multipart_upload", "big")["UploadId"]
    try:
        with pytest.raises(errors.IntegrityError, match=r"\(BadDigest\)"):
            engine.send(
                "UploadPart",
                "PUT",
                "big",
                headers={"Content-MD5": wrong},
                query={"partNumber": "1", "uploadId": upload_id},
                body=b"x" * (5 * MiB),
            )
    finally:
        client.call("abort_multipart_upload", "big", UploadId=upload_id)


def test_multipart_round_trip_through_crt(ceph: CephServer, bucket: str, tmp_path: Path) -> None:
    client = crt_client(ceph, bucket)
    data = os.urandom(12 * MiB)
    source = tmp_path / "source"
    source.write_bytes(data)
    sent: list[int] = []
    with source.open("rb") as stream:
        result = transfer.upload_stream(
            client,
            "big",
            stream,
            lambda md5: {"checksum": md5},
            memory_budget(client.config),
            on_bytes=sent.append,
        )
    md5 = hashlib.md5(data).hexdigest()
    assert (result.md5, sum(sent)) == (md5, len(data))
    head = client.call("head_object", "big")
    assert head["ETag"].strip('"').endswith("-3")
    assert head["Metadata"]["checksum"] == md5
    received: list[int] = []
    target = transfer.download(
        client, "big", tmp_path / "out", md5, len(data), on_bytes=received.append
    )
    assert target.read_bytes() == data
    assert sum(received) == len(data)
