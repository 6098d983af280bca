"""Shared fixtures: loopback S3 servers, fresh buckets, isolated dtool environments, CLI runners.

The S3 servers run for the whole session, once per kind listed in DTOOL_S3_TEST_SERVERS
(default: moto and SeaweedFS), so every test that uses ``s3`` runs against both; tests whose
outcome does not depend on the server use ``moto`` instead.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dtoolcore
import pytest

from dtool_s3_core import override
from tests.support.proxy import S3Proxy
from tests.support.servers import S3Server, s3_server

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
ORACLE_BIN = ROOT / ".venv-oracle" / "bin"
SERVERS = [s for s in os.environ.get("DTOOL_S3_TEST_SERVERS", "moto,seaweedfs").split(",") if s]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Strip AWS and dtool settings of the machine, and give each test its own HOME."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "DTOOL_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    (tmp_path / "home").mkdir()


@pytest.fixture(scope="session")
def s3_servers() -> Iterator[Callable[[str], S3Server]]:
    """Return the server of a kind, started on first use; all stop at the end of the session.

    ``s3`` and ``moto`` both take theirs from here, so a session starts each kind at most once.
    """
    with ExitStack() as stack:

        @functools.cache
        def server(kind: str) -> S3Server:
            return stack.enter_context(s3_server(kind))

        yield server


@pytest.fixture(scope="session", params=SERVERS)
def s3(request: pytest.FixtureRequest, s3_servers: Callable[[str], S3Server]) -> S3Server:
    """Each server of DTOOL_S3_TEST_SERVERS in turn."""
    return s3_servers(request.param)


@pytest.fixture(scope="session")
def moto(s3_servers: Callable[[str], S3Server]) -> S3Server:
    """The moto server alone, for tests whose outcome does not depend on the server.

    A module of such tests overrides ``s3`` with it, which points ``bucket``, ``dtool`` and
    ``proxy`` at moto as well.
    """
    return s3_servers("moto")


@pytest.fixture
def bucket(s3: S3Server) -> str:
    name = f"test-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(name)
    return name


@pytest.fixture
def proxy(s3: S3Server) -> Iterator[S3Proxy]:
    """A counting proxy in front of ``s3`` (no latency, no faults unless a test sets them)."""
    with S3Proxy(s3.endpoint_url) as running:
        yield running


def local_dataset(where: Path, name: str, contents: Mapping[str, bytes | Path]) -> Path:
    """Freeze {relpath: bytes, or a file to add} into a local dataset ``where/name``.

    Local datasets are made with dtoolcore's own disk broker: they are inputs, not under test.
    """
    where.mkdir(parents=True, exist_ok=True)
    admin = dtoolcore.generate_admin_metadata(name)
    proto = dtoolcore.generate_proto_dataset(admin, where.as_uri())
    proto.create()
    proto.put_readme(f"---\nname: {name}\n")
    for number, (relpath, content) in enumerate(contents.items()):
        path = content if isinstance(content, Path) else where / f"{name}-src" / str(number)
        if isinstance(content, bytes):
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(content)
        proto.put_item(str(path), relpath)
    proto.freeze()
    return where / name


def use_server(server: S3Server, bucket: str, tmp_path: Path, **settings: object) -> Any:
    """Configure the in-process API for ``bucket`` on ``server`` (a scoped override), with a
    download cache of the test's own; ``settings`` adds or replaces S3Config fields."""
    return override(
        bucket,
        **{
            "endpoint_url": server.endpoint_url,
            "access_key_id": server.access_key,
            "secret_access_key": server.secret_key,
            "cache_directory": str(tmp_path / "cache"),
            **settings,
        },
    )


def bucket_env(server: S3Server, bucket: str) -> dict[str, str]:
    """The dtool-s3 per-bucket variables for ``bucket`` on ``server``."""
    return {
        f"DTOOL_S3_ENDPOINT_{bucket}": server.endpoint_url,
        f"DTOOL_S3_ACCESS_KEY_ID_{bucket}": server.access_key,
        f"DTOOL_S3_SECRET_ACCESS_KEY_{bucket}": server.secret_key,
    }


@dataclass
class Dtool:
    """Runs a dtool command line (ours or the dtool-s3 0.14.1 oracle) in an isolated HOME."""

    bin_dir: Path
    env: dict[str, str] = field(default_factory=dict)

    def environment(self) -> dict[str, str]:
        """The environment its commands run in: this process's, its own, its bin first on PATH."""
        return {**os.environ, **self.env, "PATH": f"{self.bin_dir}{os.pathsep}{os.environ['PATH']}"}

    def run(
        self, *args: str, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.bin_dir / "dtool"), *args],
            env=self.environment(),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"dtool {' '.join(args)} exited {result.returncode}\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    def __call__(self, *args: str) -> str:
        return self.run(*args).stdout

    def create(self, name: str, base_uri: str) -> str:
        """Run ``dtool create`` and return the URI of the new proto dataset."""
        out = self("create", name, base_uri)
        return next(w for w in out.split() if w.startswith(base_uri + "/") and len(w) > 40)

    def add_bucket(self, server: S3Server, bucket: str) -> None:
        self.env.update(bucket_env(server, bucket))


@pytest.fixture
def dtool(tmp_path: Path, s3: S3Server, bucket: str) -> Dtool:
    """Our dtool CLI, configured for ``bucket``."""
    runner = Dtool(
        VENV_BIN, {"HOME": str(tmp_path / "home"), "DTOOL_CACHE_DIRECTORY": str(tmp_path / "cache")}
    )
    runner.add_bucket(s3, bucket)
    return runner


@pytest.fixture
def oracle(tmp_path: Path, s3: S3Server, bucket: str) -> Dtool:
    """dtool with dtool-s3 0.14.1 (separate virtualenv), configured for ``bucket``."""
    if not (ORACLE_BIN / "dtool").exists():
        if os.environ.get("CI"):
            pytest.fail("the dtool-s3 0.14.1 oracle is missing: run scripts/bootstrap.sh")
        pytest.skip("the dtool-s3 0.14.1 oracle virtualenv is not installed")
    runner = Dtool(
        ORACLE_BIN,
        {"HOME": str(tmp_path / "home"), "DTOOL_CACHE_DIRECTORY": str(tmp_path / "ocache")},
    )
    runner.add_bucket(s3, bucket)
    return runner


SOURCE_FILES = {
    "hello.txt": b"hello\n",
    "sub/dir/with space.txt": b"hello\n",
    "empty": b"",
    "j\u00e4tte.txt": "j\u00e4tte!\n".encode(),
}


def make_source_dataset(where: Path, big_size: int = 0, name: str = "ds1") -> Path:
    """Create and freeze a local dataset like the one of the format spec (section 3.1).

    Local datasets are made with dtoolcore's own disk broker: they are inputs, not under test.
    """
    where.mkdir(parents=True, exist_ok=True)
    src = where / "src"
    files = dict(SOURCE_FILES)
    if big_size:
        files["big.bin"] = os.urandom(big_size)
    admin = dtoolcore.generate_admin_metadata(name)
    proto = dtoolcore.generate_proto_dataset(admin, str(where))
    proto.create()
    proto.put_readme("---\ndescription: round trip test\n")
    for relpath, content in files.items():
        path = src / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        proto.put_item(str(path), relpath)
        proto.add_item_metadata(relpath, "kind", f"k-{len(relpath)}")
    proto.freeze()
    return where / name
