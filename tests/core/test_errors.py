"""User mistakes end in one clear line, a non-zero exit and no traceback; nothing half-written."""

from __future__ import annotations

from pathlib import Path

import pytest

from dtool_s3_core.testing import S3Server, free_port
from tests.conftest import Dtool, make_source_dataset


def assert_one_line_error(result: object, *needles: str) -> None:
    stderr = result.stderr  # type: ignore[attr-defined]
    assert result.returncode != 0  # type: ignore[attr-defined]
    assert "Traceback" not in stderr, stderr
    for needle in needles:
        assert needle in stderr, stderr


def test_missing_bucket(dtool: Dtool, s3: S3Server) -> None:
    dtool.add_bucket(s3, "no-such-bucket")
    result = dtool.run("ls", "s3://no-such-bucket", check=False)
    assert_one_line_error(result, "bucket 'no-such-bucket' does not exist")


def test_wrong_credentials(dtool: Dtool, s3: S3Server, bucket: str) -> None:
    if not s3.verifies_signatures:
        pytest.skip(f"{s3.name} accepts any signature")
    dtool.env[f"DTOOL_S3_SECRET_ACCESS_KEY_{bucket}"] = "wrong-secret-value"
    result = dtool.run("ls", f"s3://{bucket}", check=False)
    assert_one_line_error(result, "access denied", f"DTOOL_S3_SECRET_ACCESS_KEY_{bucket}")
    assert "wrong-secret-value" not in result.stderr + result.stdout


def test_partial_credentials(dtool: Dtool, bucket: str) -> None:
    del dtool.env[f"DTOOL_S3_SECRET_ACCESS_KEY_{bucket}"]
    result = dtool.run("ls", f"s3://{bucket}", check=False)
    assert_one_line_error(result, "partial credentials", f"DTOOL_S3_SECRET_ACCESS_KEY_{bucket}")


def test_unreachable_endpoint(dtool: Dtool, bucket: str) -> None:
    dtool.env[f"DTOOL_S3_ENDPOINT_{bucket}"] = f"http://127.0.0.1:{free_port()}"
    dtool.env["DTOOL_S3_MAX_ATTEMPTS"] = "2"
    dtool.env["DTOOL_S3_CONNECT_TIMEOUT"] = "1"
    result = dtool.run("ls", f"s3://{bucket}", check=False)
    assert_one_line_error(result, "cannot reach", f"DTOOL_S3_ENDPOINT_{bucket}")


def test_dataset_not_found(dtool: Dtool, bucket: str) -> None:
    uri = f"s3://{bucket}/00000000-0000-4000-8000-000000000000"
    result = dtool.run("summary", uri, check=False)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr


def test_missing_local_file_and_bad_relpath(dtool: Dtool, bucket: str, tmp_path: Path) -> None:
    uri = dtool.create("ds", f"s3://{bucket}")
    result = dtool.run("add", "item", str(tmp_path / "nope.txt"), uri, check=False)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    (tmp_path / "f.txt").write_text("x")
    result = dtool.run("add", "item", str(tmp_path / "f.txt"), uri, "../escape.txt", check=False)
    assert_one_line_error(result, "'..' component")


def test_partial_item_metadata_refuses_freeze(dtool: Dtool, bucket: str, tmp_path: Path) -> None:
    uri = dtool.create("ds", f"s3://{bucket}")
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text(name)
        dtool("add", "item", str(tmp_path / name), uri, name)
    dtool("add", "metadata", uri, "a.txt", "colour", "red")
    result = dtool.run("freeze", uri, check=False)
    assert_one_line_error(result, "item metadata 'colour' is set on 1 of 2 items")
    assert dtool("status", uri).strip() == "proto"


def test_publishing_a_proto_dataset_is_refused(dtool: Dtool, bucket: str) -> None:
    uri = dtool.create("ds", f"s3://{bucket}")
    result = dtool.run("publish", uri, check=False)
    assert result.returncode != 0 and "Traceback" not in result.stderr


def test_bad_uri(dtool: Dtool) -> None:
    result = dtool.run("ls", "s3://x", check=False)
    assert_one_line_error(result, "invalid bucket name")


def test_corrupted_item_is_detected_by_deep_verify(
    s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    from dtool_s3_core import copy_dataset, override, verify_dataset

    local = make_source_dataset(tmp_path / "local")
    settings = {
        "endpoint_url": s3.endpoint_url,
        "access_key_id": s3.access_key,
        "secret_access_key": s3.secret_key,
        "cache_directory": str(tmp_path / "cache"),
    }
    with override(bucket, **settings):
        uri = copy_dataset(str(local), f"s3://{bucket}")
        assert verify_dataset(uri) == []
        assert verify_dataset(uri, deep=True) == []
        uuid = uri.rsplit("/", 1)[1]
        ident = "3857b672471862eab426eba0622e44bd2cedbd5d"  # hello.txt
        head = s3.client().head_object(Bucket=bucket, Key=f"{uuid}/data/{ident}")
        s3.client().put_object(
            Bucket=bucket, Key=f"{uuid}/data/{ident}", Body=b"HELLO\n", Metadata=head["Metadata"]
        )
        (tmp_path / "cache").rename(tmp_path / "old-cache")
        problems = verify_dataset(uri, deep=True)
    assert len(problems) == 1 and "corrupted" in problems[0]
