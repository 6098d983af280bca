"""The three upload paths (in memory, streamed single PUT, multipart) on every server."""

from __future__ import annotations

import os
import re
from pathlib import Path

from tests.conftest import Dtool, local_dataset
from tests.support.proxy import S3Proxy

MiB = 1024 * 1024
SIZES = {"small.bin": 4096, "streamed.bin": 9 * MiB, "parts.bin": 13 * MiB}


def test_each_upload_path_stores_verified_content(
    dtool: Dtool, proxy: S3Proxy, bucket: str, tmp_path: Path
) -> None:
    contents = {name: os.urandom(size) for name, size in SIZES.items()}
    local_dataset(tmp_path, "paths", contents)
    dtool.env[f"DTOOL_S3_ENDPOINT_{bucket}"] = proxy.url
    dtool.env["DTOOL_S3_MULTIPART_THRESHOLD"] = "12MiB"
    dtool.env["DTOOL_S3_MULTIPART_PART_SIZE"] = "5MiB"

    uri = dtool("cp", "-q", (tmp_path / "paths").as_uri(), f"s3://{bucket}").strip()

    operations = proxy.stats.snapshot()["by_operation"]
    assert operations.get("CreateMultipartUpload") == 1
    assert operations.get("UploadPart") == 3
    assert "All good" in dtool("verify", "-f", uri)
    (tmp_path / "down").mkdir()
    dtool("cp", uri, (tmp_path / "down").as_uri())
    for name, data in contents.items():
        assert (tmp_path / "down" / "paths" / "data" / name).read_bytes() == data


def fault_every_multipart(
    dtool: Dtool, proxy: S3Proxy, bucket: str, kind: str, operation: str
) -> None:
    """Send dtool through ``proxy``, 13 MiB files as 5 MiB parts, and fault every ``operation``."""
    proxy.fault_rate = 1.0
    proxy.fault_kinds = (kind,)
    proxy.fault_operations = (operation,)
    dtool.env[f"DTOOL_S3_ENDPOINT_{bucket}"] = proxy.url
    dtool.env["DTOOL_S3_MULTIPART_THRESHOLD"] = "12MiB"
    dtool.env["DTOOL_S3_MULTIPART_PART_SIZE"] = "5MiB"
    dtool.env["DTOOL_S3_MAX_ATTEMPTS"] = "2"


def test_a_completion_whose_answer_is_lost_is_found_done(
    dtool: Dtool, proxy: S3Proxy, bucket: str, tmp_path: Path
) -> None:
    # The server assembles the object, but no CompleteMultipartUpload answer reaches the
    # client: the first attempt's is cut off, and every retry finds the upload gone.
    fault_every_multipart(dtool, proxy, bucket, "lose", "CompleteMultipartUpload")
    contents = {"parts.bin": os.urandom(13 * MiB)}
    local_dataset(tmp_path, "lost", contents)

    uri = dtool("cp", "-q", (tmp_path / "lost").as_uri(), f"s3://{bucket}").strip()

    operations = proxy.stats.snapshot()["by_operation"]
    assert operations["CompleteMultipartUpload"] == 2
    assert "AbortMultipartUpload" not in operations
    proxy.fault_rate = 0.0
    assert "All good" in dtool("verify", "-f", uri)
    (tmp_path / "down").mkdir()
    dtool("cp", "-q", uri, (tmp_path / "down").as_uri())
    assert (tmp_path / "down" / "lost" / "data" / "parts.bin").read_bytes() == contents["parts.bin"]


def test_a_request_cut_off_on_every_attempt_is_one_line(
    dtool: Dtool, proxy: S3Proxy, bucket: str, tmp_path: Path
) -> None:
    fault_every_multipart(dtool, proxy, bucket, "reset", "CreateMultipartUpload")
    local_dataset(tmp_path, "cut", {"parts.bin": os.urandom(13 * MiB)})

    result = dtool.run("cp", "-q", (tmp_path / "cut").as_uri(), f"s3://{bucket}", check=False)

    assert result.returncode == 1
    assert re.fullmatch(
        rf"Error: CreateMultipartUpload on s3://{bucket}/[0-9a-f-]{{36}}/data/[0-9a-f]{{40}} "
        r"failed 2 times \(ConnectionClosedError\): the connection keeps breaking; check the "
        r"network and the server, or raise DTOOL_S3_MAX_ATTEMPTS in the environment",
        result.stderr.strip(),
    ), result.stderr
