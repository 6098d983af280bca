"""Load: 10,000 items and a 2 GiB item through the CLI in bounded memory; 1,000 datasets listed.

Marked ``slow``; ``.ci/run`` runs them (about a minute each on moto). They run on moto only: what
they check is the client's memory and bookkeeping at scale, which the server does not change.
"""

from __future__ import annotations

import filecmp
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bench.harness import measure
from dtool_s3_core import create_dataset, list_datasets, override
from tests.conftest import VENV_BIN, Dtool, local_dataset
from tests.support.proxy import S3Proxy
from tests.support.servers import S3Server

pytestmark = pytest.mark.slow
N_ITEMS = 10_000
N_DATASETS = 1_000
BIG = 2 * 1024**3
MAX_RSS_MIB = 300


@pytest.fixture(autouse=True)
def moto_only(s3: S3Server) -> None:
    if s3.name != "moto":
        pytest.skip("load tests measure the client; one server is enough")


def test_ten_thousand_items(dtool: Dtool, bucket: str, tmp_path: Path) -> None:
    contents = {f"d{n % 50:02d}/item-{n:05d}.txt": f"{n}\n".encode() * 16 for n in range(N_ITEMS)}
    local = local_dataset(tmp_path, "load", contents)
    env = {**os.environ, **dtool.env}
    up = measure(
        [str(VENV_BIN / "dtool"), "cp", "-q", local.as_uri(), f"s3://{bucket}"],
        env,
        tmp_path / "up",
    )
    assert up.peak_rss_mib < MAX_RSS_MIB
    uri = up.output.strip()
    assert dtool("ls", "-q", f"s3://{bucket}").split() == [uri]
    assert "All good" in dtool("verify", "-f", uri)
    (tmp_path / "down").mkdir()
    down = measure(
        [str(VENV_BIN / "dtool"), "cp", "-q", uri, (tmp_path / "down").as_uri()],
        env,
        tmp_path / "d",
    )
    assert down.peak_rss_mib < MAX_RSS_MIB
    data = tmp_path / "down" / "load" / "data"
    for relpath, content in contents.items():
        assert (data / relpath).read_bytes() == content


def test_two_gib_item_in_bounded_memory(dtool: Dtool, bucket: str, tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    with (source / "big.bin").open("wb") as out:
        # Mostly a hole, so it costs no disk; the bytes at both ends catch misplaced parts.
        out.write(os.urandom(1 << 20))
        out.seek(BIG - (1 << 20))
        out.write(os.urandom(1 << 20))
    local = local_dataset(tmp_path / "local", "big", {"big.bin": source / "big.bin"})
    # moto assembles the 2 GiB object in memory when the upload completes; on a loaded 2-core CI
    # machine that took longer than the default 60 s read timeout.
    env = {**os.environ, **dtool.env, "DTOOL_S3_READ_TIMEOUT": "600"}
    dtool_bin = str(VENV_BIN / "dtool")
    up = measure([dtool_bin, "cp", "-q", local.as_uri(), f"s3://{bucket}"], env, tmp_path)
    assert up.peak_rss_mib < MAX_RSS_MIB
    (tmp_path / "down").mkdir()
    down = measure(
        [dtool_bin, "cp", "-q", up.output.strip(), (tmp_path / "down").as_uri()], env, tmp_path
    )
    assert down.peak_rss_mib < MAX_RSS_MIB
    copied = tmp_path / "down" / "big" / "data" / "big.bin"
    assert copied.stat().st_size == BIG
    assert filecmp.cmp(copied, source / "big.bin", shallow=False)


def test_thousand_datasets_listed(s3: S3Server, bucket: str, tmp_path: Path) -> None:
    item = tmp_path / "x.txt"
    item.write_text("x\n")
    settings = {"access_key_id": s3.access_key, "secret_access_key": s3.secret_key}

    def one(number: int) -> str:
        with override(bucket, endpoint_url=s3.endpoint_url, **settings):
            return create_dataset(f"ds-{number:04d}", f"s3://{bucket}", files={"x.txt": item})

    with ThreadPoolExecutor(max_workers=16) as pool:
        created = set(pool.map(one, range(N_DATASETS)))
    with S3Proxy(s3.endpoint_url) as proxy, override(bucket, endpoint_url=proxy.url, **settings):
        listed = list_datasets(f"s3://{bucket}")
        requests = proxy.stats.total
    assert {info.uri for info in listed} == created
    assert all(info.frozen for info in listed)
    assert requests <= N_DATASETS + N_DATASETS // 1000 + 2
