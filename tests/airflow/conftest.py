"""Airflow fixtures: a private AIRFLOW_HOME and DB per xdist worker, two loopback S3 endpoints.

Airflow reads its configuration when it is first imported, so the environment is set here at
import time, before any test module imports airflow. Each xdist worker is its own process and so
gets its own AIRFLOW_HOME and SQLite database, created once per session. The DAGs under
``dags/`` are the only ones Airflow parses; tests pass bucket names through ``run_conf``.

Connections come from ``AIRFLOW_CONN_<ID>`` variables (Airflow's own configuration) holding a
canary secret, so tests can check that it is never written anywhere.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parent / "dags"
_HOME = Path(tempfile.mkdtemp(prefix="dtool-s3-airflow-home-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME / 'airflow.db'}",
    }
)

pytest.importorskip("airflow")

from tests.support.servers import S3Server, moto_server  # noqa: E402

#: Recognisable, long enough for Airflow's masker (which skips secrets under 5 characters).
CANARY = f"canary-secret-{secrets.token_hex(8)}"
ARCHIVE_CONN = "archive_s3"
OFFSITE_CONN = "offsite_s3"


def pytest_configure(config: pytest.Config) -> None:
    # fastapi's test client (Airflow's in-process execution API under dag.test()) warns about
    # starlette's httpx transport on import; not ours to fix.
    config.addinivalue_line("filterwarnings", "ignore:Using `httpx` with `starlette")


@pytest.fixture(scope="session")
def airflow_home() -> Iterator[Path]:
    """The worker's AIRFLOW_HOME with a fresh metadata database."""
    from airflow.utils import db

    db.resetdb()
    yield _HOME
    shutil.rmtree(_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def archive() -> Iterator[S3Server]:
    with moto_server() as server:
        yield server


@pytest.fixture(scope="session")
def offsite() -> Iterator[S3Server]:
    with moto_server() as server:
        yield server


def connection_json(server: S3Server, **extra: object) -> str:
    """An AIRFLOW_CONN_* value for ``server``, with the canary as its secret.

    moto accepts any secret, which is what lets the canary stand in for a real one.
    """
    return json.dumps(
        {
            "conn_type": "dtools3",
            "host": server.endpoint_url,
            "login": server.access_key,
            "password": CANARY,
            "extra": extra,
        }
    )


@dataclass
class Endpoints:
    """The two endpoints, a fresh bucket on each, and their connections."""

    archive: S3Server
    offsite: S3Server
    archive_bucket: str
    offsite_bucket: str


@pytest.fixture
def endpoints(
    airflow_home: Path, archive: S3Server, offsite: S3Server, monkeypatch: pytest.MonkeyPatch
) -> Endpoints:
    archive_bucket = f"archive-{uuid.uuid4().hex[:10]}"
    offsite_bucket = f"offsite-{uuid.uuid4().hex[:10]}"
    archive.create_bucket(archive_bucket)
    offsite.create_bucket(offsite_bucket)
    monkeypatch.setenv(f"AIRFLOW_CONN_{ARCHIVE_CONN.upper()}", connection_json(archive))
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{OFFSITE_CONN.upper()}",
        connection_json(offsite, dataset_prefix="offsite/", publish_expiry=3600),
    )
    return Endpoints(archive, offsite, archive_bucket, offsite_bucket)
