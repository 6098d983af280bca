"""The end-to-end DAG with 5% of the requests to both endpoints failing (503, 500, resets)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.airflow.conftest import ARCHIVE_CONN, OFFSITE_CONN, Endpoints, connection_json
from tests.airflow.helpers import checked, dtool_cli, run_dag, task_states, write_files, xcom
from tests.support.proxy import FAULT_KINDS, S3Proxy

FILES = {f"dir/item-{n}.txt": f"item {n}\n".encode() * 50 for n in range(30)}


@pytest.fixture
def proxies(endpoints: Endpoints) -> Iterator[tuple[S3Proxy, S3Proxy]]:
    with (
        S3Proxy(endpoints.archive.endpoint_url, 0, 0.05, FAULT_KINDS, seed=1) as archive,
        S3Proxy(endpoints.offsite.endpoint_url, 0, 0.05, FAULT_KINDS, seed=2) as offsite,
    ):
        yield archive, offsite


def test_pipeline_survives_five_percent_faults(
    endpoints: Endpoints,
    proxies: tuple[S3Proxy, S3Proxy],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    archive, offsite = proxies
    through_archive = dataclasses.replace(endpoints.archive, endpoint_url=archive.url)
    through_offsite = dataclasses.replace(endpoints.offsite, endpoint_url=offsite.url)
    monkeypatch.setenv(f"AIRFLOW_CONN_{ARCHIVE_CONN.upper()}", connection_json(through_archive))
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{OFFSITE_CONN.upper()}",
        connection_json(through_offsite, dataset_prefix="offsite/", publish_expiry=3600),
    )
    source = write_files(tmp_path / "run", FILES)

    dag_run = run_dag(
        "dtool_s3_pipeline",
        archive=endpoints.archive_bucket,
        offsite=endpoints.offsite_bucket,
        source_dir=str(source),
    )

    assert dag_run.state == "success", task_states(dag_run)
    faults = archive.stats.faults_injected + offsite.stats.faults_injected
    assert faults > 0
    archive.fault_rate = offsite.fault_rate = 0.0
    created, copied = xcom(dag_run, "create"), xcom(dag_run, "copy")
    cli = dtool_cli(
        tmp_path,
        (endpoints.archive, endpoints.archive_bucket),
        (endpoints.offsite, endpoints.offsite_bucket),
    )
    for summary in checked(cli, created, copied).values():
        assert summary["number_of_items"] == len(FILES)
    (tmp_path / "down").mkdir()
    cli("cp", copied, (tmp_path / "down").as_uri())
    for relpath, content in FILES.items():
        assert (tmp_path / "down" / "run-20240102" / "data" / relpath).read_bytes() == content
    reader = dtool_cli(tmp_path / "reader")
    url = xcom(dag_run, "publish")
    assert json.loads(reader("summary", "-f", "json", url))["number_of_items"] == len(FILES)
