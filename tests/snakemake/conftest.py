"""Fixtures for the Snakemake plugin tests: one moto server per session, fresh buckets, and a
runner for real ``snakemake`` subprocesses in a per-test working directory."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dtoolcore
import pytest

from dtool_s3_core import create_dataset, list_datasets, override
from tests.conftest import ORACLE_BIN, VENV_BIN, Dtool
from tests.support.servers import S3Server, moto_server

READS = {"reads/a.fq": "ACGTACGT\n", "reads/b.fq": "GGGCCCAT\n", "reads/sub/c.fq": "TTTTACGA\n"}


@pytest.fixture(scope="session")
def moto() -> Iterator[S3Server]:
    with moto_server() as server:
        yield server


def new_bucket(server: S3Server, kind: str) -> str:
    name = f"{kind}-{uuid.uuid4().hex[:10]}"
    server.create_bucket(name)
    return name


@pytest.fixture
def raw_bucket(moto: S3Server) -> str:
    return new_bucket(moto, "raw")


@pytest.fixture
def results_bucket(moto: S3Server) -> str:
    return new_bucket(moto, "res")


def core_settings(server: S3Server, secret: str | None = None) -> dict[str, str]:
    return {
        "endpoint_url": server.endpoint_url,
        "access_key_id": server.access_key,
        "secret_access_key": secret or server.secret_key,
    }


def dtool_env(server: S3Server, *buckets: str, secret: str | None = None) -> dict[str, str]:
    """dtool's per-bucket variables (the configuration the plugin falls back to)."""
    env: dict[str, str] = {}
    for bucket in buckets:
        env[f"DTOOL_S3_ENDPOINT_{bucket}"] = server.endpoint_url
        env[f"DTOOL_S3_ACCESS_KEY_ID_{bucket}"] = server.access_key
        env[f"DTOOL_S3_SECRET_ACCESS_KEY_{bucket}"] = secret or server.secret_key
    return env


def make_input(
    server: S3Server, bucket: str, tmp_path: Path, name: str = "raw-reads", freeze: bool = True
) -> str:
    """Create (and freeze) an input dataset of READS; return its URI."""
    source = tmp_path / f"src-{name}"
    for relpath, text in READS.items():
        (source / relpath).parent.mkdir(parents=True, exist_ok=True)
        (source / relpath).write_text(text)
    with override(None, **core_settings(server)):
        return create_dataset(name, f"s3://{bucket}", source_dir=source, freeze=freeze)


def complement(text: str) -> str:
    return text.translate(str.maketrans("ACGT", "TGCA"))


@dataclass
class Workflow:
    """A Snakefile in a working directory, run with the real snakemake of this virtualenv."""

    workdir: Path
    env: dict[str, str] = field(default_factory=dict)

    def write(self, text: str) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "Snakefile").write_text(text)

    def _env(self, extra: dict[str, str] | None) -> dict[str, str]:
        return {**os.environ, **self.env, **(extra or {})}

    def run(
        self, *args: str, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(VENV_BIN / "snakemake"), *args],
            cwd=self.workdir,
            env=self._env(env),
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"snakemake {' '.join(args)} exited {result.returncode}\n{result.stderr[-4000:]}"
            )
        return result

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """Start snakemake without waiting for it (for concurrent runs)."""
        return subprocess.Popen(
            [str(VENV_BIN / "snakemake"), *args],
            cwd=self.workdir,
            env=self._env(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def logs(self) -> str:
        """Every Snakemake log file of the working directory, concatenated."""
        log_dir = self.workdir / ".snakemake" / "log"
        return "".join(p.read_text() for p in sorted(log_dir.glob("*"))) if log_dir.is_dir() else ""


@pytest.fixture
def workflow(tmp_path: Path) -> Workflow:
    return Workflow(tmp_path / "wf", {"DTOOL_CACHE_DIRECTORY": str(tmp_path / "cache")})


def frozen_dataset(server: S3Server, bucket: str, name: str) -> str:
    """Return the URI of the one frozen dataset called ``name`` in ``bucket``."""
    with override(None, **core_settings(server)):
        matches = [d for d in list_datasets(f"s3://{bucket}") if d.name == name]
    assert len(matches) == 1, f"expected one dataset '{name}', found {matches}"
    assert matches[0].frozen, f"dataset '{name}' is not frozen"
    return matches[0].uri


def dataset_items(server: S3Server, uri: str) -> dict[str, bytes]:
    """Return {relpath: content} of a frozen dataset, read with dtoolcore."""
    with override(None, **core_settings(server)):
        dataset = dtoolcore.DataSet.from_uri(uri)
        return {
            dataset.item_properties(i)["relpath"]: Path(
                dataset.item_content_abspath(i)
            ).read_bytes()
            for i in dataset.identifiers
        }


def oracle_runner(env: dict[str, str]) -> Dtool | None:
    """dtool-s3 0.14.1's CLI, or None where its virtualenv is not installed (never in CI)."""
    if not (ORACLE_BIN / "dtool").exists():
        if os.environ.get("CI"):
            pytest.fail("the dtool-s3 0.14.1 oracle is missing: run scripts/bootstrap.sh")
        return None
    return Dtool(ORACLE_BIN, env)
