"""The README's main job: a dataset's round trip through a loopback S3 server with the dtool CLI.

Run with ``python -m examples.demo`` from a checkout (``bash scripts/demo.sh`` sets it all up).
Steps: create a local dataset, copy it to S3, list it, verify it, publish it with presigned URLs,
read it back over HTTP with dtool-http, and compare every byte. Needs the ``server`` and ``cli``
extras. Exits non-zero with one line if a step fails.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.servers import moto_server

logger = logging.getLogger("examples.demo")
BUCKET = "demo-bucket"


def _dtool(env: dict[str, str], *args: str) -> str:
    dtool = str(Path(sys.executable).parent / "dtool")
    result = subprocess.run(
        [dtool, *args], env=env, capture_output=True, text=True, check=False, timeout=600
    )
    if result.returncode != 0:
        raise RuntimeError(f"dtool {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def _make_files(root: Path) -> dict[str, bytes]:
    files = {
        "README-data.txt": b"demo data\n",
        "raw/sample one.csv": b"a,b\n1,2\n",
        "raw/j\u00e4tte.bin": os.urandom(256 * 1024),
        "empty": b"",
    }
    for relpath, content in files.items():
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return files


def run(work: Path) -> str:
    """Run every step in ``work``; return the access URL of the published dataset."""
    with moto_server() as server:
        server.create_bucket(BUCKET)
        home = work / "home"
        (home / ".config" / "dtool").mkdir(parents=True)
        # The same keys dtool-s3 users already have in ~/.config/dtool/dtool.json.
        (home / ".config" / "dtool" / "dtool.json").write_text(
            json.dumps(
                {
                    f"DTOOL_S3_ENDPOINT_{BUCKET}": server.endpoint_url,
                    f"DTOOL_S3_ACCESS_KEY_ID_{BUCKET}": server.access_key,
                    f"DTOOL_S3_SECRET_ACCESS_KEY_{BUCKET}": server.secret_key,
                    "DTOOL_S3_PUBLISH_EXPIRY": 3600,
                    "DTOOL_CACHE_DIRECTORY": str(work / "cache"),
                }
            )
        )
        env = {**os.environ, "HOME": str(home)}
        files = _make_files(work / "files")
        logger.info("1. create a local dataset with %d items", len(files))
        _dtool(env, "create", "demo-dataset", str(work))
        local = work / "demo-dataset"
        for relpath in files:
            _dtool(env, "add", "item", str(work / "files" / relpath), str(local), relpath)
        _dtool(env, "freeze", str(local))
        logger.info("2. copy it to s3://%s (moto on %s)", BUCKET, server.endpoint_url)
        uri = _dtool(env, "cp", "-q", str(local), f"s3://{BUCKET}").strip().splitlines()[-1]
        logger.info("   -> %s", uri)
        logger.info("3. list the bucket:\n%s", _dtool(env, "ls", f"s3://{BUCKET}").rstrip())
        logger.info("4. verify: %s", _dtool(env, "verify", "-f", uri).strip())
        url = _dtool(env, "publish", "-q", uri).strip()
        logger.info("5. published (presigned, 1 h): %s...", url.split("?")[0])
        logger.info("6. read it back over HTTP:\n%s", _dtool(env, "ls", url).rstrip())
        (work / "back").mkdir()
        _dtool(env, "cp", url, str(work / "back"))
        for relpath, content in files.items():
            if (work / "back" / "demo-dataset" / "data" / relpath).read_bytes() != content:
                raise RuntimeError(f"item {relpath} differs after the round trip")
        logger.info("7. all %d items came back byte for byte", len(files))
        return url


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    with tempfile.TemporaryDirectory(prefix="dtool-s3-demo-") as tmp:
        try:
            run(Path(tmp))
        except (RuntimeError, OSError) as exc:
            logger.error("demo failed: %s", exc)
            return 1
    logger.info("demo finished: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
