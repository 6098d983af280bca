"""The item-body engines: awscrt (default) and botocore, on the real loopback servers.

Both must store the same objects (Content-MD5 and user metadata on every upload), verify
downloads in one pass, report progress in bytes, fall back to botocore where awscrt cannot
serve, and keep small items at one request each.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from dtool_s3_core import errors
from dtool_s3_core._s3 import transfer
from dtool_s3_core._s3.client import S3Client
from dtool_s3_core._s3.flow import memory_budget
from dtool_s3_core.config import MiB, override, resolve_config
from tests.conftest import VENV_BIN, Dtool, local_dataset
from tests.support.proxy import S3Proxy
from tests.support.servers import S3Server

ENGINES = ("crt", "botocore")
# Small parts, so that an 11 MiB body goes as a multipart upload (its parts through the engine).
SMALL_PARTS = {"multipart_threshold": 10 * MiB, "part_size": 5 * MiB}


def client_for(
    server: S3Server, bucket: str, endpoint: str | None = None, **settings: object
) -> S3Client:
    with override(
        bucket,
        endpoint_url=endpoint or server.endpoint_url,
        access_key_id=server.access_key,
        secret_access_key=server.secret_key,
        **settings,
    ):
        return S3Client(resolve_config(bucket))


def upload(client: S3Client, key: str, path: Path, on_bytes: list[int]) -> transfer.Uploaded:
    with path.open("rb") as stream:
        return transfer.upload_stream(
            client,
            key,
            stream,
            lambda md5: {"checksum": md5, "handle": "aGFuZGxl"},
            memory_budget(client.config),
            on_bytes=on_bytes.append,
        )


def downloads_survive(
    client: S3Client, proxy: S3Proxy, fault: str, tmp_path: Path, *groups: tuple[int, ...]
) -> list[int]:
    """Download objects of each group of sizes through ``proxy``; each arrives whole and is
    counted once by progress. Returns the faults of kind ``fault`` injected after each group."""
    injected = []
    for sizes in groups:
        for number, size in enumerate(sizes):
            data = os.urandom(size)
            client.put_bytes(f"k{number}", data)
            received: list[int] = []
            out = transfer.download(
                client,
                f"k{number}",
                tmp_path / f"out-{size}-{number}",
                hashlib.md5(data).hexdigest(),
                size,
                on_bytes=received.append,
            )
            assert out.read_bytes() == data
            assert sum(received) == size
        injected.append(proxy.stats.snapshot()["faults_by_kind"].get(fault, 0))
    return injected


@pytest.fixture
def counted(proxy: S3Proxy) -> Iterator[S3Proxy]:
    proxy.stats.reset()
    yield proxy


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    "size", [0, 4096, 9 * MiB, 11 * MiB], ids=["empty", "small", "streamed", "multipart"]
)
def test_round_trip(
    engine: str, size: int, s3: S3Server, bucket: str, tmp_path: Path, counted: S3Proxy
) -> None:
    client = client_for(s3, bucket, counted.url, engine=engine, **SMALL_PARTS)
    assert (client.engine is not None) == (engine == "crt")
    data = os.urandom(size)
    source = tmp_path / "source"
    source.write_bytes(data)
    sent: list[int] = []
    result = upload(client, "item", source, sent)
    md5 = hashlib.md5(data).hexdigest()
    assert (result.size, result.md5) == (size, md5)
    assert sum(sent) == size
    head = client.call("head_object", "item")
    assert head["Metadata"] == {"checksum": md5, "handle": "aGFuZGxl"}
    assert head["ContentLength"] == size

    received: list[int] = []
    target = tmp_path / "out" / "item"
    transfer.download(client, "item", target, md5, size, on_bytes=received.append)
    assert target.read_bytes() == data
    assert sum(received) == size
    operations = counted.stats.snapshot()["by_operation"]
    assert operations.get("GetObject") == 1
    assert operations.get("UploadPart", 0) == (3 if size > 10 * MiB else 0)


@pytest.mark.parametrize("engine", ENGINES)
def test_corrupted_object_is_refused_and_nothing_is_left(
    engine: str, s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    client = client_for(s3, bucket, engine=engine, **SMALL_PARTS)
    target = tmp_path / "out" / "item"
    # One item the native engine fetches (up to a part), one botocore streams (larger).
    for size in (4096, 6 * MiB):
        good = os.urandom(size)
        bad = bytearray(good)
        bad[size // 2] ^= 0xFF
        client.put_bytes("item", bytes(bad))
        with pytest.raises(errors.IntegrityError, match="is corrupted in the bucket"):
            transfer.download(client, "item", target, hashlib.md5(good).hexdigest(), size)
        assert list(target.parent.iterdir()) == []
        with pytest.raises(errors.IntegrityError, match="bytes but the manifest says"):
            transfer.download(client, "item", target, None, size - 1)
        assert list(target.parent.iterdir()) == []


def test_wrong_content_md5_is_refused_through_crt(s3: S3Server, bucket: str) -> None:
    if s3.name == "moto":
        pytest.skip("moto does not check Content-MD5")
    client = client_for(s3, bucket, engine="crt")
    engine = client.engine
    assert engine is not None
    wrong = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
    with pytest.raises(errors.IntegrityError, match="rejected the upload"):
        engine.send("PutObject", "PUT", "item", headers={"Content-MD5": wrong}, body=b"data")
    assert client.exists("item") is None
    upload_id = client.call("create_multipart_upload", "big")["UploadId"]
    try:
        with pytest.raises(errors.IntegrityError, match="rejected the upload"):
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


def test_errors_read_as_with_botocore(s3: S3Server, bucket: str, tmp_path: Path) -> None:
    lines = []
    for engine in ENGINES:
        client = client_for(s3, bucket, engine=engine)
        with pytest.raises(errors.ObjectNotFound) as missing:
            transfer.download(client, "no/such/key", tmp_path / engine)
        lines.append(str(missing.value))
    assert lines[0] == lines[1] == f"s3://{bucket}/no/such/key does not exist"
    unreachable = client_for(s3, bucket, "http://127.0.0.1:9", engine="crt", max_attempts=1)
    with pytest.raises(errors.EndpointUnreachable, match=r"cannot reach http://127\.0\.0\.1:9"):
        transfer.download(unreachable, "key", tmp_path / "x")


def test_fallback_to_botocore(
    s3: S3Server, bucket: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="dtool_s3_core._s3.client")
    assert client_for(s3, bucket, engine="botocore").engine is None
    assert "DTOOL_S3_ENGINE is botocore" in caplog.text
    monkeypatch.setenv("AWS_CA_BUNDLE", "/nonexistent/ca.pem")
    tls = client_for(s3, bucket, "https://127.0.0.1:1", engine="crt")
    assert tls.engine is None
    assert "custom CA bundle" in caplog.text
    with override(bucket, endpoint_url=s3.endpoint_url):
        anonymous = S3Client(resolve_config(bucket))
    assert anonymous.engine is None
    assert "no credentials" in caplog.text
    assert s3.secret_key not in caplog.text


def test_config_refuses_an_unknown_engine(bucket: str) -> None:
    with override(bucket, engine="fast"), pytest.raises(errors.ConfigurationError) as refused:
        resolve_config(bucket)
    assert str(refused.value) == (
        f"engine of dtool_s3_core.override() for bucket '{bucket}' must be crt or botocore, "
        "got 'fast'"
    )


def test_slowdown_is_retried(s3: S3Server, bucket: str, tmp_path: Path) -> None:
    with S3Proxy(s3.endpoint_url, fault_rate=0.3, fault_kinds=("slowdown",), seed=14) as proxy:
        client = client_for(s3, bucket, proxy.url, engine="crt")
        for number in range(10):
            data = os.urandom(1000 + number)
            path = tmp_path / f"in-{number}"
            path.write_bytes(data)
            upload(client, f"k{number}", path, [])
            out = transfer.download(
                client, f"k{number}", tmp_path / f"out-{number}", hashlib.md5(data).hexdigest()
            )
            assert out.read_bytes() == data
        assert proxy.stats.snapshot()["faults_by_kind"].get("slowdown", 0) > 0


def test_small_items_cost_one_request_each(
    proxy: S3Proxy, s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    """The marginal requests of a small item through ``dtool cp``, both ways (crt engine)."""
    dtool = Dtool(VENV_BIN, {"HOME": str(tmp_path), "DTOOL_CACHE_DIRECTORY": str(tmp_path / "c")})
    dtool.add_bucket(s3, bucket)
    dtool.env[f"DTOOL_S3_ENDPOINT_{bucket}"] = proxy.url
    totals = {}
    for count in (1, 101):
        files = {f"dir/file {n}.bin": os.urandom(4096) for n in range(count)}
        local = local_dataset(tmp_path / f"src{count}", "many", files)
        proxy.stats.reset()
        uri = dtool("cp", "-q", str(local), f"s3://{bucket}").strip()
        up = proxy.stats.snapshot()["total"]
        out = tmp_path / f"out{count}"
        out.mkdir()
        proxy.stats.reset()
        dtool("cp", "-q", uri, str(out))
        totals[count] = (up, proxy.stats.snapshot()["total"])
    for direction in (0, 1):
        per_item = (totals[101][direction] - totals[1][direction]) / 100
        assert per_item <= 1.02, totals


@pytest.mark.parametrize("engine", ENGINES)
def test_a_stalled_answer_is_given_up_and_retried(
    engine: str, s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    """DTOOL_S3_READ_TIMEOUT holds for both engines (awscrt has none of its own): a server that
    goes quiet costs one timeout and a retry, never a hang, and progress counts each byte once."""
    with S3Proxy(s3.endpoint_url, fault_rate=0.4, fault_kinds=("stall",), seed=3) as proxy:
        proxy.fault_methods = ("GET",)
        client = client_for(s3, bucket, proxy.url, engine=engine, read_timeout=1.0, **SMALL_PARTS)
        # 4 KiB comes through the native engine (when on), 6 MiB as one botocore stream.
        stalled = downloads_survive(client, proxy, "stall", tmp_path, (4096,) * 3, (6 * MiB,) * 3)
        assert 0 < stalled[0] < stalled[1]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_server_that_stops_answering_is_one_line(
    engine: str, s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    with S3Proxy(s3.endpoint_url, fault_rate=1.0, fault_kinds=("stall",)) as proxy:
        proxy.fault_methods = ("GET",)
        client = client_for(s3, bucket, proxy.url, engine=engine, read_timeout=0.5, max_attempts=2)
        client.put_bytes("item", b"data")
        target = tmp_path / "out" / "item"
        with pytest.raises(errors.EndpointUnreachable) as stalled:
            transfer.download(client, "item", target, hashlib.md5(b"data").hexdigest(), 4)
        assert str(stalled.value) == (
            f"{proxy.url} stopped answering while working on s3://{bucket}/item: try again "
            f"later, or raise read_timeout of dtool_s3_core.override() for bucket '{bucket}' "
            "(seconds) for a slow server"
        )
        assert list(target.parent.iterdir()) == []
        # awscrt cannot tell a stall from a slow link: it hands the request to botocore, which
        # sees that no byte moves, on each of its attempts.
        expected = {"crt": 1 + 2, "botocore": 2}[engine]
        assert proxy.stats.snapshot()["faults_by_kind"]["stall"] == expected


@pytest.mark.parametrize("engine", ENGINES)
def test_a_body_cut_midway_is_fetched_again_and_counted_once(
    engine: str, s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    with S3Proxy(s3.endpoint_url, fault_rate=0.5, fault_kinds=("truncate",), seed=8) as proxy:
        proxy.fault_methods = ("GET",)
        client = client_for(s3, bucket, proxy.url, engine=engine, **SMALL_PARTS)
        # 64 KiB comes through the native engine (when on), 6 MiB as one botocore stream.
        sizes = ((64 * 1024,) * 3, (6 * MiB,) * 2)
        cut = downloads_survive(client, proxy, "truncate", tmp_path, *sizes)
        assert 0 < cut[0] < cut[1]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_body_cut_on_every_attempt_is_one_line(
    engine: str, s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    with S3Proxy(s3.endpoint_url, fault_rate=1.0, fault_kinds=("truncate",)) as proxy:
        proxy.fault_methods = ("GET",)
        client = client_for(s3, bucket, proxy.url, engine=engine, max_attempts=2, **SMALL_PARTS)
        target = tmp_path / "out" / "item"
        for size in (4096, 6 * MiB):
            data = os.urandom(size)
            client.put_bytes("item", data)
            with pytest.raises(errors.TransferFailed) as cut:
                transfer.download(client, "item", target, hashlib.md5(data).hexdigest(), size)
            assert re.fullmatch(
                rf"reading s3://{bucket}/item failed 2 times \(\w+\): the connection keeps "
                "breaking; check the network and the server, or raise max_attempts of "
                rf"dtool_s3_core\.override\(\) for bucket '{bucket}'",
                str(cut.value),
            ), str(cut.value)
            assert list(target.parent.iterdir()) == []
        assert proxy.stats.snapshot()["faults_by_kind"]["truncate"] == 4
