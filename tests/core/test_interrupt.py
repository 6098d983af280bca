"""Ctrl-C stops a copy (issue 19): nothing queued is sent after it, and the copy can be resumed.

A real ``dtool`` process copies through a proxy that delays every request, so the copy takes
several seconds; once the proxy has seen the copy start, the test sends SIGINT. The process must
exit 130 within a few seconds with one line that holds the resume command, and leave a proto
dataset (or a partial local copy) that no request changes any more, with no multipart upload
open; that command must then finish the copy. The server does not matter: moto only.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import uuid as uuidlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dtool_s3_core import create_dataset, open_s3
from dtool_s3_core._s3.cancel import Cancelled
from dtool_s3_core._s3.client import S3Client
from dtool_s3_core._s3.flow import ByteBudget
from dtool_s3_core._s3.multipart import write_parts
from dtool_s3_core._s3.transfer import download
from dtool_s3_core._s3.transport import bodies
from dtool_s3_core.config import resolve_config
from dtool_s3_core.errors import DatasetStateError
from tests.conftest import VENV_BIN, Dtool, bucket_env, local_dataset, use_server
from tests.support.proxy import S3Proxy
from tests.support.servers import S3Server

#: Seconds the proxy holds every request: with two requests at a time, the copies below take
#: several seconds.
LATENCY = 0.25
SMALL_ITEMS = {f"item-{n:02d}.txt": f"item {n}\n".encode() * 200 for n in range(32)}
#: Over the multipart threshold set below: two parts each.
BIG_ITEMS = {f"big-{n}.bin": os.urandom(6 * 1024 * 1024) for n in range(4)}
#: The PUTs of a new dataset before its first item: registration, structure, dtool README,
#: admin metadata, README.
METADATA_PUTS = 5
#: How long a stopped copy may take to exit after SIGINT.
EXIT_SECONDS = 5.0


@pytest.fixture
def s3(moto: S3Server) -> S3Server:
    """The server does not matter here: moto, for ``bucket`` and ``dtool`` as well."""
    return moto


@pytest.fixture
def proxy(s3: S3Server) -> Iterator[S3Proxy]:
    with S3Proxy(s3.endpoint_url, latency=LATENCY) as running:
        yield running


def new_bucket(s3: S3Server) -> str:
    name = f"int-{uuidlib.uuid4().hex[:12]}"
    s3.create_bucket(name)
    return name


def slow(dtool: Dtool, s3: S3Server, proxy: S3Proxy, bucket: str, engine: str = "crt") -> Dtool:
    """``dtool`` reaching ``bucket`` through the delaying proxy, two requests at a time."""
    runner = Dtool(VENV_BIN, dict(dtool.env))
    runner.env.update(bucket_env(s3, bucket))
    runner.env[f"DTOOL_S3_ENDPOINT_{bucket}"] = proxy.url
    runner.env["DTOOL_S3_MAX_CONCURRENCY"] = "2"
    runner.env["DTOOL_S3_ENGINE"] = engine
    runner.env["DTOOL_S3_MULTIPART_THRESHOLD"] = "5MiB"
    runner.env["DTOOL_S3_MULTIPART_PART_SIZE"] = "5MiB"
    return runner


def start(dtool: Dtool, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, **dtool.env}
    return subprocess.Popen(
        [str(dtool.bin_dir / "dtool"), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition: Callable[[], bool], process: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            out, err = process.communicate(timeout=30)
            pytest.fail(f"{what} never happened (exit {process.returncode}):\n{out}\n{err}")
        time.sleep(0.02)


def interrupt(
    process: subprocess.Popen[str], proxy: S3Proxy | None = None
) -> tuple[int, str, str, float]:
    """Send SIGINT once; return (exit status, stdout, stderr, seconds until the exit).

    With ``proxy``: check that no item transfer starts after it (two may have been on their way
    to the proxy when it was sent).
    """
    before = transfers(proxy) if proxy is not None else 0
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    try:
        out, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate(timeout=30)
        pytest.fail(f"still running 60 s after SIGINT:\n{out}\n{err}")
    elapsed = time.monotonic() - sent
    if proxy is not None:
        assert transfers(proxy) <= before + 2, (before, proxy.stats.snapshot())
    return process.returncode, out, err, elapsed


def transfers(proxy: S3Proxy) -> int:
    """The item transfers the proxy has seen (and a few small requests, which count alike)."""
    counts = operations(proxy)
    return counts["PutObject"] + counts["GetObject"] + counts["UploadPart"]


def resume_command(status: int, stderr: str, elapsed: float) -> list[str]:
    """The one line of an interrupted ``dtool s3 cp``, checked; its resume command."""
    assert status == 130, stderr
    assert elapsed < EXIT_SECONDS, f"{elapsed:.1f} s after SIGINT:\n{stderr}"
    assert "Traceback" not in stderr and "Aborted" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Interrupted: "), stderr
    command = lines[0].partition("; resume with: ")[2]
    assert command.startswith("dtool s3 cp --resume "), lines[0]
    return shlex.split(command)


def item_keys(s3: S3Server, bucket: str) -> list[str]:
    pages = s3.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(
        o["Key"] for page in pages for o in page.get("Contents", []) if "/data/" in o["Key"]
    )


def assert_stopped(count: Callable[[], int], total: int) -> int:
    """Nothing is transferred any more (allowing for requests the proxy still holds)."""
    time.sleep(2 * LATENCY)
    before = count()
    time.sleep(1.0)
    assert count() == before
    assert before < total, f"all {total} items were transferred after all"
    return before


def assert_counted(stderr: str, stored: int, total: int) -> None:
    """The line counts the items stored and confirmed; the proxy may have delivered the two it
    held when the copy cancelled them (a resume checks every item it finds)."""
    found = re.search(r"Interrupted: (\d+) of (\d+) items copied", stderr)
    assert found is not None, stderr
    assert int(found[2]) == total
    assert int(found[1]) <= stored <= int(found[1]) + 2, (stored, stderr)


def proto_admin(s3: S3Server, bucket: str) -> dict[str, object]:
    keys = [
        o["Key"]
        for o in s3.client().list_objects_v2(Bucket=bucket).get("Contents", [])
        if o["Key"].endswith("/dtool")
    ]
    assert len(keys) == 1, keys
    body = s3.client().get_object(Bucket=bucket, Key=keys[0])["Body"].read()
    admin: dict[str, object] = json.loads(body)
    return admin


def finish(dtool: Dtool, command: list[str], proxy: S3Proxy) -> str:
    """Run the printed resume command (without the delay) and check the copy; return its URI."""
    proxy.latency = 0.0
    result = dtool.run(*command[1:])
    uri = result.stdout.strip().splitlines()[-1]
    assert "All good" in dtool("verify", "-f", uri)
    return uri


# -- dtool s3 cp ---------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["crt", "botocore"])
def test_ctrl_c_stops_a_copy_to_s3_and_resume_finishes_it(
    engine: str, s3: S3Server, dtool: Dtool, proxy: S3Proxy, tmp_path: Path
) -> None:
    local = local_dataset(tmp_path / "local", "ds", SMALL_ITEMS)
    dest = new_bucket(s3)
    runner = slow(dtool, s3, proxy, dest, engine)
    process = start(runner, "s3", "cp", str(local), f"s3://{dest}")
    wait_for(lambda: operations(proxy)["PutObject"] >= METADATA_PUTS + 4, process, "4 item PUTs")

    status, _, stderr, elapsed = interrupt(process, proxy)
    command = resume_command(status, stderr, elapsed)
    assert command[-2:] == [str(local), f"s3://{dest}"]
    stored = assert_stopped(lambda: len(item_keys(s3, dest)), len(SMALL_ITEMS))
    assert_counted(stderr, stored, len(SMALL_ITEMS))
    assert proto_admin(s3, dest)["type"] == "protodataset"

    finish(runner, command, proxy)
    assert len(item_keys(s3, dest)) == len(SMALL_ITEMS)
    assert proto_admin(s3, dest)["type"] == "dataset"


@pytest.mark.parametrize("engine", ["crt", "botocore"])
def test_ctrl_c_aborts_the_open_multipart_uploads(
    engine: str, s3: S3Server, dtool: Dtool, proxy: S3Proxy, tmp_path: Path
) -> None:
    local = local_dataset(tmp_path / "local", "big", BIG_ITEMS)
    dest = new_bucket(s3)
    runner = slow(dtool, s3, proxy, dest, engine)
    process = start(runner, "s3", "cp", str(local), f"s3://{dest}")
    wait_for(lambda: operations(proxy)["CreateMultipartUpload"] >= 1, process, "a multipart upload")

    status, _, stderr, elapsed = interrupt(process, proxy)
    command = resume_command(status, stderr, elapsed)
    time.sleep(2 * LATENCY)
    assert operations(proxy)["AbortMultipartUpload"] >= 1
    assert not s3.client().list_multipart_uploads(Bucket=dest).get("Uploads")
    assert_stopped(lambda: len(item_keys(s3, dest)), len(BIG_ITEMS))
    finish(runner, command, proxy)


def test_ctrl_c_stops_a_copy_to_disk_and_resume_finishes_it(
    s3: S3Server, bucket: str, dtool: Dtool, proxy: S3Proxy, tmp_path: Path
) -> None:
    local = local_dataset(tmp_path / "local", "ds", SMALL_ITEMS)
    src_uri = dtool("s3", "cp", "-q", str(local), f"s3://{bucket}").strip()
    runner = slow(dtool, s3, proxy, bucket)
    target = tmp_path / "copy"
    target.mkdir()
    process = start(runner, "s3", "cp", src_uri, str(target))
    data = target / "ds" / "data"
    downloaded = lambda: len(list(data.glob("*.txt")))  # noqa: E731 (a partial one ends in .part)
    wait_for(lambda: downloaded() >= 4, process, "4 items downloaded")

    status, _, stderr, elapsed = interrupt(process, proxy)
    command = resume_command(status, stderr, elapsed)
    stored = assert_stopped(downloaded, len(SMALL_ITEMS))
    assert_counted(stderr, stored, len(SMALL_ITEMS))
    assert not [p for p in data.rglob("*.part")]
    admin = json.loads((target / "ds" / ".dtool" / "dtool").read_text())
    assert admin["type"] == "protodataset"

    finish(runner, command, proxy)


def test_ctrl_c_stops_a_copy_across_endpoints(
    s3: S3Server, bucket: str, dtool: Dtool, proxy: S3Proxy, tmp_path: Path
) -> None:
    local = local_dataset(tmp_path / "local", "ds", SMALL_ITEMS)
    src_uri = dtool("s3", "cp", "-q", str(local), f"s3://{bucket}").strip()
    dest = new_bucket(s3)
    # The source straight at moto, the destination through the proxy: two endpoints, so every
    # item is relayed through the copying process.
    runner = slow(dtool, s3, proxy, dest)
    process = start(runner, "s3", "cp", src_uri, f"s3://{dest}")
    wait_for(lambda: operations(proxy)["PutObject"] >= METADATA_PUTS + 4, process, "4 item PUTs")

    status, _, stderr, elapsed = interrupt(process, proxy)
    command = resume_command(status, stderr, elapsed)
    assert_stopped(lambda: len(item_keys(s3, dest)), len(SMALL_ITEMS))
    assert proto_admin(s3, dest)["type"] == "protodataset"
    finish(runner, command, proxy)


def test_a_second_ctrl_c_exits_at_once(
    s3: S3Server, dtool: Dtool, proxy: S3Proxy, tmp_path: Path
) -> None:
    local = local_dataset(tmp_path / "local", "ds", SMALL_ITEMS)
    dest = new_bucket(s3)
    # botocore cannot cancel a request the server has not answered: the first Ctrl-C waits for
    # the two PUTs the proxy holds for 10 s.
    runner = slow(dtool, s3, proxy, dest, "botocore")
    process = start(runner, "s3", "cp", str(local), f"s3://{dest}")
    wait_for(lambda: operations(proxy)["PutObject"] >= METADATA_PUTS, process, "the first item")
    proxy.latency = 10.0
    wait_for(lambda: operations(proxy)["PutObject"] >= METADATA_PUTS + 2, process, "held PUTs")
    process.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert process.poll() is None, "the first Ctrl-C did not wait for the PUTs in flight"

    status, _, stderr, elapsed = interrupt(process, proxy)
    assert status == 130, stderr
    assert elapsed < 2.0
    assert "Traceback" not in stderr, stderr


def test_ctrl_c_before_the_first_item_still_names_the_resume(
    s3: S3Server, dtool: Dtool, proxy: S3Proxy, tmp_path: Path
) -> None:
    local = local_dataset(tmp_path / "local", "ds", SMALL_ITEMS)
    dest = new_bucket(s3)
    runner = slow(dtool, s3, proxy, dest)
    process = start(runner, "s3", "cp", str(local), f"s3://{dest}")
    # The registration: the dataset is being created, no item has moved yet.
    wait_for(lambda: operations(proxy)["PutObject"] >= 1, process, "the registration")

    status, _, stderr, elapsed = interrupt(process, proxy)
    assert status == 130 and elapsed < EXIT_SECONDS, stderr
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    expected = f"dtool s3 cp --resume {local} s3://{dest}"
    assert lines == [f"Interrupted before any item was copied; resume with: {expected}"]
    finish(runner, expected.split(), proxy)


LIBRARY_COPY = """
import sys, time
from dtool_s3_core import api
try:
    api.copy(sys.argv[1], sys.argv[2])
except KeyboardInterrupt:
    sys.stdout.write("KeyboardInterrupt\\n")
"""


def test_ctrl_c_in_a_script_raises_keyboardinterrupt_from_copy_with_uploads_aborted(
    s3: S3Server, dtool: Dtool, proxy: S3Proxy, tmp_path: Path
) -> None:
    local = local_dataset(tmp_path / "local", "big", BIG_ITEMS)
    dest = new_bucket(s3)
    runner = slow(dtool, s3, proxy, dest)
    process = subprocess.Popen(
        [sys.executable, "-c", LIBRARY_COPY, str(local), f"s3://{dest}"],
        env={**os.environ, **runner.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: operations(proxy)["CreateMultipartUpload"] >= 1, process, "a multipart upload")

    status, stdout, stderr, elapsed = interrupt(process, proxy)
    assert (status, stdout) == (0, "KeyboardInterrupt\n"), stderr
    assert elapsed < EXIT_SECONDS
    # Aborted before copy() raised: nothing is left for the exit to finish.
    assert operations(proxy)["AbortMultipartUpload"] >= 1
    time.sleep(2 * LATENCY)
    assert not s3.client().list_multipart_uploads(Bucket=dest).get("Uploads")


def test_a_dataset_object_refuses_work_after_an_interrupt(
    s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    item = tmp_path / "item.txt"
    item.write_bytes(b"x")
    with use_server(s3, bucket, tmp_path):
        dataset = create_dataset("ds", f"s3://{bucket}", freeze=False)
        opened = open_s3(dataset)
        opened.interrupt()
        expected = (
            f"the transfers of {dataset} were interrupted (Ctrl-C): items being uploaded may be "
            "missing; open the dataset again to go on"
        )
        with pytest.raises(DatasetStateError) as raised:
            opened.queue_upload(item, "item.txt", lambda _: None)
        assert str(raised.value) == expected
        with pytest.raises(DatasetStateError):
            opened.freeze()
        open_s3(dataset).upload(item, "item.txt")


# -- dtool cp through the broker -----------------------------------------------------------------


def test_ctrl_c_stops_the_queued_uploads_of_dtool_cp(
    s3: S3Server, dtool: Dtool, proxy: S3Proxy, tmp_path: Path
) -> None:
    local = local_dataset(tmp_path / "local", "ds", SMALL_ITEMS)
    dest = new_bucket(s3)
    runner = slow(dtool, s3, proxy, dest)
    process = start(runner, "cp", str(local), f"s3://{dest}")
    wait_for(lambda: operations(proxy)["PutObject"] >= METADATA_PUTS + 4, process, "4 item PUTs")

    status, _, stderr, elapsed = interrupt(process, proxy)
    assert status != 0 and elapsed < EXIT_SECONDS, f"exit {status} after {elapsed:.1f} s"
    assert "Traceback" not in stderr, stderr
    assert_stopped(lambda: len(item_keys(s3, dest)), len(SMALL_ITEMS))
    assert proto_admin(s3, dest)["type"] == "protodataset"


def test_ctrl_c_stops_the_upload_of_dtool_add_item(
    s3: S3Server, dtool: Dtool, proxy: S3Proxy, tmp_path: Path
) -> None:
    dest = new_bucket(s3)
    dtool.add_bucket(s3, dest)
    uri = dtool.create("added", f"s3://{dest}")
    item = tmp_path / "big.bin"
    item.write_bytes(BIG_ITEMS["big-0.bin"])
    runner = slow(dtool, s3, proxy, dest)
    process = start(runner, "add", "item", str(item), uri, "big.bin")
    wait_for(lambda: operations(proxy)["CreateMultipartUpload"] >= 1, process, "the upload")

    status, _, stderr, elapsed = interrupt(process, proxy)
    assert status != 0 and elapsed < EXIT_SECONDS, f"exit {status} after {elapsed:.1f} s"
    assert "Traceback" not in stderr, stderr
    time.sleep(2 * LATENCY)
    assert operations(proxy)["AbortMultipartUpload"] >= 1
    assert not s3.client().list_multipart_uploads(Bucket=dest).get("Uploads")
    assert item_keys(s3, dest) == []


def operations(proxy: S3Proxy) -> dict[str, int]:
    """The requests the proxy has seen, by operation (0 for those it has not)."""
    counts = proxy.stats.snapshot()["by_operation"]
    return {name: counts.get(name, 0) for name in _OPERATIONS}


_OPERATIONS = (
    "PutObject",
    "GetObject",
    "UploadPart",
    "CreateMultipartUpload",
    "AbortMultipartUpload",
)


# -- the transports ------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["crt", "botocore"])
def test_every_body_transfer_of_a_cancelled_client_stops(
    engine: str, s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    """Streamed PUTs, GETs and parts of a client whose flag is raised stop without a retry."""
    item = tmp_path / "item.bin"
    item.write_bytes(os.urandom(9 * 1024 * 1024))
    with use_server(s3, bucket, tmp_path, engine=engine):
        client = S3Client(resolve_config(bucket))
        client.put_bytes("there", b"x" * 1000)
        client.cancel.set()
        with item.open("rb") as stream, pytest.raises(Cancelled):
            bodies(client, stream=True).put("item", stream, 9 * 1024 * 1024, b"0" * 16, {})
        with pytest.raises(Cancelled):
            download(client, "there", tmp_path / "there")
        with pytest.raises(Cancelled):
            write_parts(client, "parts", {}, lambda _: b"x", ByteBudget(1 << 30))
    assert client.exists("item") is None and not (tmp_path / "there").exists()
    assert not s3.client().list_multipart_uploads(Bucket=bucket).get("Uploads")
