"""Faults survived: throttling, 500s and cut connections during every CLI path; nothing lost.

A proxy between the dtool CLI and the server answers a share of the requests with 503 SlowDown or
500 InternalError, or resets the connection. With 5% faults every path must complete with the
right bytes; with every request failing, a copy must stop with one line, leave a proto dataset
(never a frozen one) and finish with ``dtool cp --resume`` once the faults stop.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dtool_s3_core import list_datasets, override
from tests.conftest import VENV_BIN, Dtool, local_dataset
from tests.support.proxy import FAULT_KINDS, S3Proxy
from tests.support.servers import S3Server

N_ITEMS = 40
BIG = 12 * 1024 * 1024


@pytest.fixture
def proxy(s3: S3Server) -> Iterator[S3Proxy]:
    with S3Proxy(s3.endpoint_url, fault_kinds=FAULT_KINDS, seed=20261124) as running:
        yield running


@pytest.fixture
def faulty(proxy: S3Proxy, s3: S3Server, bucket: str, tmp_path: Path) -> Dtool:
    runner = Dtool(VENV_BIN, {"HOME": str(tmp_path), "DTOOL_CACHE_DIRECTORY": str(tmp_path / "c")})
    runner.add_bucket(s3, bucket)
    runner.env[f"DTOOL_S3_ENDPOINT_{bucket}"] = proxy.url
    # Small parts so that the big item goes up as a multipart upload, faults and all.
    runner.env["DTOOL_S3_MULTIPART_THRESHOLD"] = "5MiB"
    runner.env["DTOOL_S3_MULTIPART_PART_SIZE"] = "5MiB"
    return runner


def faulty_dataset(where: Path) -> tuple[Path, dict[str, bytes]]:
    contents = {f"dir/item {n}.bin": os.urandom(2048 + n) for n in range(N_ITEMS)}
    contents["big.bin"] = os.urandom(BIG)
    return local_dataset(where, "faulty", contents), contents


def same_content(root: Path, contents: dict[str, bytes]) -> None:
    for relpath, data in contents.items():
        assert (root / "data" / relpath).read_bytes() == data, relpath


def test_five_percent_faults_every_path_completes(
    faulty: Dtool, proxy: S3Proxy, bucket: str, tmp_path: Path
) -> None:
    local, contents = faulty_dataset(tmp_path)
    proxy.fault_rate = 0.05
    uri = faulty("cp", "-q", local.as_uri(), f"s3://{bucket}").strip()
    assert uri in faulty("ls", "-q", f"s3://{bucket}")
    assert "All good" in faulty("verify", "-f", uri)
    (tmp_path / "down").mkdir()
    faulty("cp", uri, (tmp_path / "down").as_uri())
    same_content(tmp_path / "down" / "faulty", contents)

    proto_uri = faulty.create("made-in-s3", f"s3://{bucket}")
    (tmp_path / "item.txt").write_text("made under faults\n")
    for relpath in ("a.txt", "b/c.txt"):
        faulty("add", "item", str(tmp_path / "item.txt"), proto_uri, relpath)
    (tmp_path / "README.yml").write_text("---\nmade: under faults\n")
    faulty("readme", "write", proto_uri, str(tmp_path / "README.yml"))
    faulty("freeze", proto_uri)
    assert "All good" in faulty("verify", "-f", proto_uri)

    faulty.env["DTOOL_S3_PUBLISH_EXPIRY"] = "600"
    url = faulty("publish", "-q", uri).strip()
    proxy.fault_rate = 0.0
    assert "big.bin" in faulty("ls", url)
    assert proxy.stats.snapshot()["faults_injected"] >= 10


def fail_after(proxy: S3Proxy, requests: int) -> threading.Thread:
    """Turn every request into a fault once ``requests`` have gone through."""

    def watch() -> None:
        deadline = time.monotonic() + 120
        while proxy.stats.total < requests and time.monotonic() < deadline:
            time.sleep(0.002)
        proxy.fault_rate = 1.0

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_total_outage_leaves_a_proto_dataset_that_resume_completes(
    faulty: Dtool, proxy: S3Proxy, s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    local, contents = faulty_dataset(tmp_path)
    faulty.env["DTOOL_S3_MAX_ATTEMPTS"] = "3"
    watcher = fail_after(proxy, 15)
    result = faulty.run("cp", "-q", local.as_uri(), f"s3://{bucket}", check=False)
    watcher.join()
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    message = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(message) == 1 and message[0].startswith("Error: "), result.stderr

    proxy.fault_rate = 0.0
    settings = {"endpoint_url": s3.endpoint_url, "access_key_id": s3.access_key}
    with override(bucket, secret_access_key=s3.secret_key, **settings):
        listed = list_datasets(f"s3://{bucket}")
    assert [info.frozen for info in listed] == [False]

    uri = faulty("cp", "-q", "--resume", local.as_uri(), f"s3://{bucket}").strip()
    assert "All good" in faulty("verify", "-f", uri)
    (tmp_path / "down").mkdir()
    faulty("cp", uri, (tmp_path / "down").as_uri())
    same_content(tmp_path / "down" / "faulty", contents)
