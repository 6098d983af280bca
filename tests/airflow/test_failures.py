"""Failing tasks fail with one legible line that names the problem and never the secret."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from dtool_s3_core import create_dataset
from tests.airflow.conftest import CANARY, Endpoints
from tests.airflow.helpers import on, run_dag, task_states, write_files


def test_failures_are_one_legible_line(
    endpoints: Endpoints,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    archive = endpoints.archive_bucket
    with on(endpoints.archive, archive):
        frozen_uri = create_dataset(
            "exists", f"s3://{archive}", source_dir=write_files(tmp_path, {"a": b"a"})
        )
    broken = {"conn_type": "dtool_s3", "host": endpoints.archive.endpoint_url, "login": "key-id"}
    monkeypatch.setenv("AIRFLOW_CONN_BROKEN_S3", json.dumps(broken))
    missing = f"missing-{uuid.uuid4().hex[:8]}"

    dag_run = run_dag("dtool_s3_failures", missing=missing, frozen_uri=frozen_uri, archive=archive)

    assert dag_run.state == "failed"
    assert set(task_states(dag_run).values()) == {"failed"}
    output = capfd.readouterr()
    lines = (output.out + output.err).splitlines()
    expected = {
        "missing_bucket": f"creating dataset 'never' in s3://{missing} (connection 'archive_s3') "
        f"failed: bucket '{missing}' does not exist at {endpoints.archive.endpoint_url}",
        "half_credentials": f"listing s3://{archive} (connection 'broken_s3') failed: connection "
        "'broken_s3' sets the login but not the password",
        "exists": f"failed: a dataset already exists at {frozen_uri} (a frozen copy): copy "
        "with resume=True",
        "no_connection": f"waiting for dataset 'anything' in s3://{archive} (connection "
        "'undefined_s3') failed: The conn_id `undefined_s3` isn't defined",
    }
    for task_id, message in expected.items():
        assert any(message in line for line in lines), (task_id, message)
    assert CANARY not in output.out + output.err
