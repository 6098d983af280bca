"""Isolation: writes stay under the dataset prefix, nothing becomes public unless asked, presigned
URLs expire. Checked by listing the whole bucket and by anonymous HTTP requests."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import dtoolcore
import pytest

from dtool_s3_core import copy_dataset, create_dataset, freeze_dataset, publish_dataset
from tests.conftest import make_source_dataset, use_server
from tests.support.servers import S3Server

PREFIX = "team-a/raw/"
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
# No proxy from the environment may stand between these requests and the loopback server.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_status(url: str) -> int:
    try:
        with _HTTP.open(url, timeout=30) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def keys(s3: S3Server, bucket: str) -> list[str]:
    found: list[str] = []
    for page in s3.client().get_paginator("list_objects_v2").paginate(Bucket=bucket):
        found += [entry["Key"] for entry in page.get("Contents", [])]
    return found


def assert_isolated(s3: S3Server, bucket: str, uuids: set[str]) -> None:
    """Every key of the bucket belongs to one of the datasets, under the prefix."""
    for key in keys(s3, bucket):
        if key.startswith("dtool-"):
            assert key.removeprefix("dtool-") in uuids, key
            body = s3.client().get_object(Bucket=bucket, Key=key)["Body"].read()
            assert body == PREFIX.encode(), key
        else:
            assert any(key.startswith(f"{PREFIX}{uuid}/") for uuid in uuids), key
    assert not s3.client().list_multipart_uploads(Bucket=bucket).get("Uploads")


@pytest.fixture
def configured(s3: S3Server, bucket: str, tmp_path: Path) -> Iterator[str]:
    with use_server(s3, bucket, tmp_path, dataset_prefix=PREFIX):
        yield bucket


def test_every_write_stays_under_the_prefix(s3: S3Server, configured: str, tmp_path: Path) -> None:
    bucket = configured
    (tmp_path / "a.txt").write_text("alpha\n")
    (tmp_path / "b.txt").write_text("beta\n")
    files = {"a.txt": tmp_path / "a.txt", "sub/b.txt": tmp_path / "b.txt"}
    uri = create_dataset("iso", f"s3://{bucket}", files=files, readme="---\nx: 1\n", freeze=False)
    uuids = {uri.rsplit("/", 1)[1]}
    proto = dtoolcore.ProtoDataSet.from_uri(uri)
    for relpath in files:
        proto.add_item_metadata(relpath, "kind", "text")
    proto.put_tag("draft")
    proto.put_annotation("stage", "proto")
    assert_isolated(s3, bucket, uuids)
    freeze_dataset(uri)
    dataset = dtoolcore.DataSet.from_uri(uri)
    dataset.put_tag("final")
    dataset.put_annotation("stage", "frozen")
    dataset.put_overlay("colour", dict.fromkeys(dataset.identifiers, "red"))
    dataset.put_readme("---\nx: 2\n")
    assert_isolated(s3, bucket, uuids)
    publish_dataset(uri, expiry=None if s3.supports_public_acl else 600)
    copied = copy_dataset(str(make_source_dataset(tmp_path / "local")), f"s3://{bucket}")
    uuids.add(copied.rsplit("/", 1)[1])
    assert_isolated(s3, bucket, uuids)
    stored = keys(s3, bucket)
    assert any(key.endswith("/http_manifest.json") for key in stored)
    assert not any("/fragments/" in key for key in stored)


def test_nothing_is_public_unless_asked(s3: S3Server, configured: str, tmp_path: Path) -> None:
    if not s3.verifies_signatures:
        pytest.skip(f"{s3.name} lets anonymous requests through")
    bucket = configured
    (tmp_path / "a.txt").write_text("alpha\n")
    uri = create_dataset("private", f"s3://{bucket}", files={"a.txt": tmp_path / "a.txt"})
    uuid = uri.rsplit("/", 1)[1]
    item_key = f"{PREFIX}{uuid}/data/{dtoolcore.utils.generate_identifier('a.txt')}"
    plain = f"{s3.endpoint_url}/{bucket}/"
    assert http_status(plain + item_key) == 403
    publish_dataset(uri, expiry=600)
    http_manifest = json.loads(
        s3.client()
        .get_object(Bucket=bucket, Key=f"{PREFIX}{uuid}/http_manifest.json")["Body"]
        .read()
    )
    [item_url] = http_manifest["item_urls"].values()
    assert http_status(item_url) == 200
    for key in keys(s3, bucket):
        assert http_status(plain + key) == 403, key


def test_presigned_publish_grants_no_acl(s3: S3Server, configured: str, tmp_path: Path) -> None:
    if not s3.supports_public_acl:
        pytest.skip(f"{s3.name} has no ACLs to inspect")
    bucket = configured
    (tmp_path / "a.txt").write_text("alpha\n")
    private = create_dataset("private", f"s3://{bucket}", files={"a.txt": tmp_path / "a.txt"})
    publish_dataset(private, expiry=600)
    public = create_dataset("public", f"s3://{bucket}", files={"a.txt": tmp_path / "a.txt"})
    publish_dataset(public)

    def public_keys() -> set[str]:
        client = s3.client()
        return {
            key
            for key in keys(s3, bucket)
            if any(
                grant["Grantee"].get("URI") == ALL_USERS
                for grant in client.get_object_acl(Bucket=bucket, Key=key)["Grants"]
            )
        }

    shared = public_keys()
    assert shared, "publishing without an expiry is asking for public-read ACLs"
    public_uuid = public.rsplit("/", 1)[1]
    assert all(key.startswith(f"{PREFIX}{public_uuid}/") for key in shared), shared


def test_presigned_urls_expire(s3: S3Server, configured: str, tmp_path: Path) -> None:
    if not s3.verifies_signatures:
        pytest.skip(f"{s3.name} does not check presigned URLs")
    bucket = configured
    (tmp_path / "a.txt").write_text("alpha\n")
    uri = create_dataset("short", f"s3://{bucket}", files={"a.txt": tmp_path / "a.txt"})
    access_url = publish_dataset(uri, expiry=1)
    signed_at = time.time()
    assert "X-Amz-Expires=1&" in access_url
    base, query = access_url.split("?", 1)
    uuid = uri.rsplit("/", 1)[1]
    http_manifest = json.loads(
        s3.client()
        .get_object(Bucket=bucket, Key=f"{PREFIX}{uuid}/http_manifest.json")["Body"]
        .read()
    )
    # SigV4 times have one-second resolution: two more seconds are past any rounding.
    time.sleep(max(0.0, signed_at + 3 - time.time()))
    assert http_status(f"{base}/http_manifest.json?{query}") == 403
    for url in [*http_manifest["item_urls"].values(), http_manifest["readme_url"]]:
        assert "X-Amz-Expires=1&" in url
        assert http_status(url) == 403
