"""``dtool verify -f`` and ``dtool s3 verify`` compare each object's stored checksum metadata with
the manifest (issue 19), as dtool-s3 0.14.1 does, at one HEAD per item.

Objects are rewritten behind the broker's back with a plain boto3 client. The server does not
matter here, so the cases run on moto only (``s3`` below).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from dtool_s3_core._format.keys import identifier
from dtool_s3_core._format.manifest import item_metadata
from tests.conftest import Dtool, local_dataset
from tests.support.proxy import S3Proxy
from tests.support.servers import S3Server

FILES = {"hello.txt": b"hello\n", "sub/other.txt": b"other bytes\n"}
HELLO_ID = identifier("hello.txt")


@pytest.fixture
def s3(moto: S3Server) -> S3Server:
    """The server does not matter here: moto, for ``bucket``, ``dtool`` and ``proxy`` as well."""
    return moto


def upload(dtool: Dtool, bucket: str, tmp_path: Path, files: dict[str, bytes]) -> str:
    """Copy a local dataset of ``files`` to the bucket with ``dtool s3 cp``; return its URI."""
    local = local_dataset(tmp_path / "local", "ds", files)
    return dtool("s3", "cp", "-q", str(local), f"s3://{bucket}").strip()


def item_key(uri: str, relpath: str) -> str:
    return f"{uri.rsplit('/', 1)[1]}/data/{identifier(relpath)}"


def output(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"


def test_rewritten_bytes_and_checksum_fail_verify(
    dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    uri = upload(dtool, bucket, tmp_path, FILES)
    forged = b"HELLO\n"  # same size as b"hello\n"
    s3.client().put_object(
        Bucket=bucket,
        Key=item_key(uri, "hello.txt"),
        Body=forged,
        Metadata=item_metadata("hello.txt", hashlib.md5(forged).hexdigest()),
    )

    full = dtool.run("verify", "-f", uri, check=False)
    assert full.returncode != 0, output(full)
    assert full.stdout.splitlines() == [f"Altered item hash: {HELLO_ID} hello.txt"], output(full)
    assert "Traceback" not in full.stderr, output(full)

    ours = dtool.run("s3", "verify", uri, check=False)
    assert ours.returncode == 1, output(ours)
    assert ours.stdout == "checksum differs: hello.txt\n", output(ours)


def test_intact_dataset_is_all_good(dtool: Dtool, bucket: str, tmp_path: Path) -> None:
    uri = upload(dtool, bucket, tmp_path, FILES)
    assert "All good" in dtool("verify", "-f", uri)
    assert dtool("s3", "verify", uri).strip() == "All good :)"


def test_missing_object_is_a_missing_item(
    dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    """The listing finds it missing; no hash is asked of it, so no error stops verify."""
    uri = upload(dtool, bucket, tmp_path, FILES)
    s3.client().delete_object(Bucket=bucket, Key=item_key(uri, "hello.txt"))

    full = dtool.run("verify", "-f", uri, check=False)
    assert full.returncode != 0, output(full)
    assert full.stdout.splitlines() == [f"Missing item: {HELLO_ID} hello.txt"], output(full)
    assert "Traceback" not in full.stderr and "Error" not in full.stderr, output(full)

    ours = dtool.run("s3", "verify", uri, check=False)
    assert ours.returncode == 1 and ours.stdout == "missing item: hello.txt\n", output(ours)


def test_object_without_checksum_metadata_fails_verify(
    dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    """Overwritten by a tool that keeps no metadata: ``dtool verify -f`` refuses, naming the
    object; ``dtool s3 verify`` lists it and goes on."""
    uri = upload(dtool, bucket, tmp_path, FILES)
    key = item_key(uri, "hello.txt")
    s3.client().put_object(Bucket=bucket, Key=key, Body=b"hello\n")

    full = dtool.run("verify", "-f", uri, check=False)
    assert full.returncode != 0, output(full)
    assert "All good" not in full.stdout and "Traceback" not in full.stderr, output(full)
    assert full.stderr.strip() == (
        f"Error: s3://{bucket}/{key} has no checksum metadata; re-upload the item"
    ), output(full)

    ours = dtool.run("s3", "verify", uri, check=False)
    assert ours.returncode == 1 and ours.stdout == "checksum differs: hello.txt\n", output(ours)


N_ITEMS = 40


def test_verify_full_costs_one_head_per_item(
    dtool: Dtool,
    proxy: S3Proxy,
    bucket: str,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    files = {f"dir/item {n}.bin": os.urandom(1024) for n in range(N_ITEMS)}
    uri = upload(dtool, bucket, tmp_path, files)
    dtool.env[f"DTOOL_S3_ENDPOINT_{bucket}"] = proxy.url

    proxy.stats.reset()
    assert "All good" in dtool("verify", uri)
    plain = proxy.stats.snapshot()
    proxy.stats.reset()
    assert "All good" in dtool("verify", "-f", uri)
    full = proxy.stats.snapshot()

    ops, plain_ops = full["by_operation"], plain["by_operation"]
    measured = (
        f"dtool verify -f: {full['total']} requests for {N_ITEMS} items "
        f"({full['total'] / N_ITEMS:.3f} per item; {ops.get('HeadObject', 0) / N_ITEMS:.3f} "
        f"HEADs per item), {ops}; dtool verify: {plain['total']}, {plain_ops}"
    )
    record_property("requests", measured)  # in the JUnit XML, for the benchmarks' record
    # The one listing of data/ (one page below 1000 items) is the one plain verify makes too.
    assert ops.get("ListObjectsV2", 0) == plain_ops.get("ListObjectsV2", 0), measured
    assert ops.get("HeadObject", 0) == N_ITEMS, measured
    assert plain_ops.get("HeadObject", 0) == 0, measured
    assert full["total"] - plain["total"] <= N_ITEMS, measured
