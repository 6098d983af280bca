"""S3 -> S3 copies within one service: server-side, nothing lost, resumable."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import dtoolcore
import pytest

from dtool_s3_core import copy_dataset, create_dataset, open_s3, override, verify_dataset
from tests.conftest import VENV_BIN, Dtool
from tests.support.proxy import S3Proxy
from tests.support.servers import S3Server

N_ITEMS = 30


@pytest.fixture
def two_buckets(s3: S3Server, proxy: S3Proxy, tmp_path: Path) -> Iterator[tuple[str, str]]:
    names = (f"src-{uuid.uuid4().hex[:10]}", f"dst-{uuid.uuid4().hex[:10]}")
    settings = {
        "endpoint_url": proxy.url,
        "access_key_id": s3.access_key,
        "secret_access_key": s3.secret_key,
        "cache_directory": str(tmp_path / "cache"),
    }
    for name in names:
        s3.create_bucket(name)
    with override(names[0], **settings), override(names[1], **settings):
        yield names


def source_dataset(bucket: str, tmp_path: Path) -> tuple[str, dict[str, bytes]]:
    contents = {f"dir/item {n}.bin": os.urandom(1000 + n) for n in range(N_ITEMS)}
    for relpath, data in contents.items():
        path = tmp_path / "src" / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    uri = create_dataset("copied", f"s3://{bucket}", source_dir=tmp_path / "src", readme="a: 1\n")
    dataset = dtoolcore.DataSet.from_uri(uri)
    dataset.put_annotation("project", "x")
    dataset.put_tag("raw")
    return uri, contents


def test_copy_between_buckets_is_server_side(
    two_buckets: tuple[str, str], proxy: S3Proxy, s3: S3Server, tmp_path: Path
) -> None:
    src_bucket, dest_bucket = two_buckets
    src_uri, contents = source_dataset(src_bucket, tmp_path)
    proxy.stats.reset()
    dest_uri = copy_dataset(src_uri, f"s3://{dest_bucket}")
    ops = proxy.stats.snapshot()["by_operation"]
    assert ops.get("CopyObject") == N_ITEMS
    assert ops.get("GetObject", 0) < 10
    assert proxy.stats.total <= N_ITEMS + 25
    assert verify_dataset(dest_uri, deep=True) == []
    copy = dtoolcore.DataSet.from_uri(dest_uri)
    assert copy.uuid == dtoolcore.DataSet.from_uri(src_uri).uuid
    assert copy.get_readme_content() == "a: 1\n"
    assert copy.get_annotation("project") == "x"
    assert copy.list_tags() == ["raw"]
    dtool = Dtool(VENV_BIN, {"HOME": str(tmp_path), "DTOOL_CACHE_DIRECTORY": str(tmp_path / "c")})
    dtool.env.update(
        {
            f"DTOOL_S3_ENDPOINT_{dest_bucket}": s3.endpoint_url,
            f"DTOOL_S3_ACCESS_KEY_ID_{dest_bucket}": s3.access_key,
            f"DTOOL_S3_SECRET_ACCESS_KEY_{dest_bucket}": s3.secret_key,
        }
    )
    dtool("verify", "-f", dest_uri)
    (tmp_path / "down").mkdir()
    dtool("cp", dest_uri, (tmp_path / "down").as_uri())
    for relpath, data in contents.items():
        assert (tmp_path / "down" / "copied" / "data" / relpath).read_bytes() == data


def test_resume_copies_only_what_is_missing(
    two_buckets: tuple[str, str], proxy: S3Proxy, tmp_path: Path
) -> None:
    src_bucket, dest_bucket = two_buckets
    src_uri, contents = source_dataset(src_bucket, tmp_path)
    source = dtoolcore.DataSet.from_uri(src_uri)
    partial = open_s3(f"s3://{dest_bucket}/{source.uuid}")
    partial.create_proto({**source.admin_metadata, "type": "protodataset"})
    first = sorted(contents)[0]
    partial.upload(tmp_path / "src" / first, first)
    proxy.stats.reset()
    dest_uri = copy_dataset(src_uri, f"s3://{dest_bucket}", resume=True)
    assert proxy.stats.snapshot()["by_operation"].get("CopyObject") == N_ITEMS - 1
    assert verify_dataset(dest_uri, deep=True) == []
