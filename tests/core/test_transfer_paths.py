"""The three upload paths (in memory, streamed single PUT, multipart) on every server."""

from __future__ import annotations

import os
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
