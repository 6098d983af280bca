"""Slow links finish and trickles stop, on both engines (``tests/support/hostile.py``, ``slow``).

A steady body slower than the whole-request read timeout is not a stall: an upload and a
download whose every request takes longer than ``DTOOL_S3_READ_TIMEOUT`` complete, because a
request is only cancelled when no byte has moved for that long. A body that moves, but below
``DTOOL_S3_MIN_RATE`` over a window of ``DTOOL_S3_READ_TIMEOUT`` seconds, ends in one line.
"""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from dtool_s3_core import api, override
from dtool_s3_core.errors import IntegrityError, TransferFailed
from tests.conftest import VENV_BIN, Dtool, bucket_env, local_dataset, use_server
from tests.support.hostile import HostileS3
from tests.support.servers import S3Server

MiB = 1024 * 1024
ENGINES = ["crt", "botocore"]


def settings(
    server: HostileS3, moto: S3Server, tmp_path: Path, engine: str, **more: object
) -> dict[str, object]:
    return {
        "endpoint_url": server.endpoint_url,
        "access_key_id": moto.access_key,
        "secret_access_key": moto.secret_key,
        "cache_directory": str(tmp_path / "cache"),
        "engine": engine,
        "read_timeout": 3.0,
        "max_attempts": 2,
        **more,
    }


@pytest.mark.parametrize("engine", ENGINES)
def test_a_slow_steady_link_finishes(moto: S3Server, tmp_path: Path, engine: str) -> None:
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    moto.create_bucket(bucket)
    # Sent in two 5 MiB parts, received as one stream; sent and received whole.
    contents = {"parts": os.urandom(6 * MiB), "whole": os.urandom(4 * MiB), "small": b"x"}
    source = local_dataset(tmp_path, "slow", contents)
    limits = {"multipart_threshold": 5 * MiB, "part_size": 5 * MiB}
    # 1 MiB/s: every large body takes 4-5 s, longer than the 3 s read timeout.
    back = tmp_path / "back"
    back.mkdir()
    with (
        HostileS3("slow", upstream=moto.endpoint_url, rate=MiB) as server,
        override(bucket, **settings(server, moto, tmp_path, engine, **limits)),
    ):
        uri = api.copy(str(source.as_uri()), f"s3://{bucket}").uri
        copied = api.copy(uri, back.as_uri())
    data = Path(urlsplit(copied.uri).path) / "data"
    assert {p.name: p.read_bytes() for p in data.iterdir()} == contents


def upload(moto: S3Server, tmp_path: Path, contents: dict[str, bytes]) -> tuple[str, str]:
    """A frozen dataset of ``contents`` in a new bucket of ``moto``: (bucket, URI)."""
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    moto.create_bucket(bucket)
    source = local_dataset(tmp_path, "src", contents)
    with use_server(moto, bucket, tmp_path):
        return bucket, api.copy(source.as_uri(), f"s3://{bucket}").uri


@pytest.mark.parametrize("engine", ENGINES)
def test_a_trickle_ends_in_one_line(moto: S3Server, tmp_path: Path, engine: str) -> None:
    bucket, uri = upload(moto, tmp_path, {"item": os.urandom(64 * 1024)})
    back = tmp_path / "back"
    back.mkdir()
    # 20 bytes a second, against a floor of 1 KiB a second over the 3 s read timeout.
    with (
        HostileS3("slow", upstream=moto.endpoint_url, rate=20) as server,
        override(bucket, **settings(server, moto, tmp_path, engine, min_rate=1024)),
        pytest.raises(TransferFailed) as info,
    ):
        api.copy(uri, back.as_uri())
    message = str(info.value)
    assert re.fullmatch(
        rf"s3://{bucket}/{uuid_of(uri)}/data/[0-9a-f]{{40}} came at \d+ bytes a second over the "
        rf"last \d+ s, below the floor of 1024: check the network, or lower "
        rf"min_rate of dtool_s3_core\.override\(\) for bucket '{bucket}' \(bytes a second; 0 "
        r"turns the floor off\)",
        message,
    ), message
    assert not list((back / "src" / "data").glob("*")), "nothing is left but a proto dataset"


def uuid_of(uri: str) -> str:
    return uri.rsplit("/", 1)[1]


def swollen(moto: S3Server, tmp_path: Path, size: int) -> tuple[str, str, str, Path]:
    """A dataset whose 1,000-byte item object was replaced by ``size`` bytes, its metadata
    kept: (bucket, URI, item key, an empty directory to copy it to)."""
    bucket, uri = upload(moto, tmp_path, {"item": b"x" * 1000})
    client = moto.client()
    key = next(
        o["Key"]
        for o in client.list_objects_v2(Bucket=bucket, Prefix=f"{uuid_of(uri)}/data/")["Contents"]
    )
    metadata = client.head_object(Bucket=bucket, Key=key)["Metadata"]
    client.put_object(Bucket=bucket, Key=key, Body=b"\0" * size, Metadata=metadata)
    back = tmp_path / "back"
    back.mkdir()
    return bucket, uri, key, back


@pytest.mark.parametrize("engine", ENGINES)
def test_an_oversized_body_is_not_read(moto: S3Server, tmp_path: Path, engine: str) -> None:
    bucket, uri, key, back = swollen(moto, tmp_path, 8 * MiB)
    with (
        use_server(moto, bucket, tmp_path, engine=engine),
        pytest.raises(IntegrityError) as info,
    ):
        api.copy(uri, back.as_uri())
    assert str(info.value) == (
        f"s3://{bucket}/{key} has {8 * MiB} bytes but the manifest says 1000: the item was "
        "changed after the dataset was frozen"
    )
    assert not list((back / "src" / "data").glob("*"))


@pytest.mark.parametrize("engine", ENGINES)
def test_an_oversized_body_costs_no_memory(moto: S3Server, tmp_path: Path, engine: str) -> None:
    """A 256 MiB object behind a 1,000-byte manifest entry: one line, and no 256 MiB held."""
    bucket, uri, key, back = swollen(moto, tmp_path, 256 * MiB)
    cli = Dtool(VENV_BIN, {"HOME": str(tmp_path / "home"), "DTOOL_S3_ENGINE": engine})
    cli.env.update(bucket_env(moto, bucket))
    # The peak of the command's own memory (VmHWM): a child's rusage would count the memory
    # of this process, which it starts as a copy of.
    peak = tmp_path / "peak"
    wrapper = (
        "import atexit, runpy, sys\n"
        "def peak():\n"
        "    status = open('/proc/self/status').read().split('VmHWM:')[1].split()[0]\n"
        f"    open({str(peak)!r}, 'w').write(status)\n"
        "atexit.register(peak)\n"
        f"sys.argv = ['dtool', 's3', 'cp', {uri!r}, {back.as_uri()!r}]\n"
        f"runpy.run_path({str(VENV_BIN / 'dtool')!r}, run_name='__main__')\n"
    )
    result = subprocess.run(
        [str(VENV_BIN / "python"), "-c", wrapper],
        env={**os.environ, **cli.env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"Error: s3://{bucket}/{key} has {256 * MiB} bytes but the manifest says 1000: the "
        "item was changed after the dataset was frozen"
    ]
    # The command itself takes about 100 MiB; the object would add 256 (awscrt: twice that).
    assert int(peak.read_text()) * 1024 < 200 * MiB, peak.read_text()
