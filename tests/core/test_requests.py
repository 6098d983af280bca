"""Hard checks on request counts, counted at a proxy between the dtool CLI and the server."""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import VENV_BIN, Dtool, local_dataset
from tests.support.proxy import S3Proxy
from tests.support.servers import S3Server

N_ITEMS = 100


def test_requests_per_item(proxy: S3Proxy, s3: S3Server, bucket: str, tmp_path: Path) -> None:
    dtool = Dtool(VENV_BIN, {"HOME": str(tmp_path), "DTOOL_CACHE_DIRECTORY": str(tmp_path / "c")})
    dtool.add_bucket(s3, bucket)
    dtool.env[f"DTOOL_S3_ENDPOINT_{bucket}"] = proxy.url
    files = {f"dir/file {n}.bin": os.urandom(4096) for n in range(N_ITEMS)}
    local = local_dataset(tmp_path, "many", files)

    proxy.stats.reset()
    dtool("cp", str(local), f"s3://{bucket}")
    up = proxy.stats.snapshot()
    assert up["total"] <= 1.2 * N_ITEMS, up
    assert up["by_operation"].get("HeadObject", 0) == 0, up

    proxy.stats.reset()
    uri = dtool("ls", "-q", f"s3://{bucket}").split()[0]
    assert proxy.stats.snapshot()["total"] <= 3

    (tmp_path / "out").mkdir()
    proxy.stats.reset()
    dtool("cp", uri, str(tmp_path / "out"))
    down = proxy.stats.snapshot()
    assert down["total"] <= 1.1 * N_ITEMS, down

    proxy.stats.reset()
    assert "All good" in dtool("verify", uri)
    assert proxy.stats.snapshot()["total"] <= 10
