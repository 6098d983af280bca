"""Items added while another process freezes the dataset are never lost silently.

Two S3Dataset objects on one dataset stand for two processes (each has its own caches); the
freezer's steps are run one by one so that the writer's upload lands where the race puts it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dtool_s3_core import create_dataset, open_s3
from dtool_s3_core.errors import DatasetStateError
from tests.conftest import use_server
from tests.support.servers import S3Server


def proto(s3: S3Server, bucket: str, tmp_path: Path) -> str:
    (tmp_path / "a.txt").write_text("a")
    return create_dataset(
        "race", f"s3://{bucket}", files={"a.txt": tmp_path / "a.txt"}, freeze=False
    )


def test_an_upload_after_the_freezers_listing_fails_its_writer(
    s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    (tmp_path / "late.txt").write_text("late")
    with use_server(s3, bucket, tmp_path):
        uri = proto(s3, bucket, tmp_path)
        freezer, writer = open_s3(uri), open_s3(uri)
        admin = freezer.require_admin(fresh=True)
        items = freezer.begin_freeze()
        writer.upload(tmp_path / "late.txt", "late.txt")
        freezer.finish_freeze(items, admin)
        with pytest.raises(DatasetStateError) as info:
            writer.confirm_uploads()
    assert str(info.value) == (
        f"{uri} was frozen by another process while 1 item(s) were being added (e.g. "
        "'late.txt'): they are not in the frozen dataset; add them to a new dataset"
    )
    assert sorted(e.relpath for e in open_s3_entries(s3, bucket, tmp_path, uri)) == ["a.txt"]


def test_an_upload_before_the_freeze_is_in_the_manifest(
    s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    (tmp_path / "early.txt").write_text("early")
    with use_server(s3, bucket, tmp_path):
        uri = proto(s3, bucket, tmp_path)
        freezer, writer = open_s3(uri), open_s3(uri)
        writer.upload(tmp_path / "early.txt", "early.txt")
        writer.confirm_uploads()
        freezer.freeze()
        writer.confirm_uploads()
    relpaths = sorted(e.relpath for e in open_s3_entries(s3, bucket, tmp_path, uri))
    assert relpaths == ["a.txt", "early.txt"]


def test_a_writer_that_sees_the_marker_checks_the_finished_manifest(
    s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    (tmp_path / "mid.txt").write_text("mid")
    with use_server(s3, bucket, tmp_path):
        uri = proto(s3, bucket, tmp_path)
        freezer, writer = open_s3(uri), open_s3(uri)
        admin = freezer.require_admin(fresh=True)
        writer.upload(tmp_path / "mid.txt", "mid.txt")
        items = freezer.begin_freeze()
        freezer.finish_freeze(items, admin)
        writer.confirm_uploads()
        assert (
            not s3.client()
            .list_objects_v2(Bucket=bucket, Prefix=freezer.layout.freeze_marker)
            .get("Contents")
        )


def open_s3_entries(s3: S3Server, bucket: str, tmp_path: Path, uri: str) -> list:
    with use_server(s3, bucket, tmp_path):
        return list(open_s3(uri).entries().values())
