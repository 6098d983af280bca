"""The end-to-end DAG: create -> sensors -> copy to a second endpoint -> publish -> list."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from tests.airflow.conftest import CANARY, Endpoints
from tests.airflow.helpers import (
    asset_events,
    checked,
    dtool_cli,
    files_containing,
    own_environment,
    queued_dags,
    run_dag,
    task_states,
    write_files,
    xcom,
)

FILES = {"a.txt": b"alpha\n", "sub/b.csv": b"x,y\n1,2\n", "empty": b""}


def test_pipeline_end_to_end(
    endpoints: Endpoints,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = write_files(tmp_path / "run", FILES)
    environ = own_environment()

    dag_run = run_dag(
        "dtool_s3_pipeline",
        archive=endpoints.archive_bucket,
        offsite=endpoints.offsite_bucket,
        source_dir=str(source),
    )

    assert dag_run.state == "success", task_states(dag_run)
    assert own_environment() == environ
    created, copied = xcom(dag_run, "create"), xcom(dag_run, "copy")
    uuid = created.rsplit("/", 1)[1]
    assert created == f"s3://{endpoints.archive_bucket}/{uuid}"
    assert copied == f"s3://{endpoints.offsite_bucket}/{uuid}"
    assert xcom(dag_run, "wait") == xcom(dag_run, "wait_deferred") == created

    cli = dtool_cli(
        tmp_path,
        (endpoints.archive, endpoints.archive_bucket),
        (endpoints.offsite, endpoints.offsite_bucket),
    )
    summaries = checked(cli, created, copied)
    for summary in summaries.values():
        assert summary["name"] == "run-20240102" and summary["number_of_items"] == len(FILES)
    assert '"instrument": "x"' in cli("readme", "show", copied)
    # The offsite connection's dataset prefix decides where the copy's keys live.
    keys = endpoints.offsite.client().list_objects_v2(Bucket=endpoints.offsite_bucket)["Contents"]
    assert any(obj["Key"].startswith(f"offsite/{uuid}/") for obj in keys)

    url = xcom(dag_run, "publish")
    assert url.startswith(endpoints.offsite.endpoint_url)
    reader = dtool_cli(tmp_path / "reader")
    assert json.loads(reader("summary", "-f", "json", url))["uuid"] == uuid
    ident = hashlib.sha1(b"sub/b.csv").hexdigest()
    assert Path(reader("item", "fetch", url, ident).strip()).read_bytes() == FILES["sub/b.csv"]

    listing = xcom(dag_run, "list")
    assert [entry["uri"] for entry in listing] == [copied]
    assert set(listing[0]) == {"uri", "uuid", "name", "frozen", "created_at", "frozen_at"}
    assert listing[0]["frozen"] is True and listing[0]["name"] == "run-20240102"

    for uri, task_id in ((created, "create"), (copied, "copy")):
        [event] = asset_events(uri)
        assert event["task_id"] == task_id
        assert {k: event["extra"][k] for k in ("name", "uuid", "item_count")} == {
            "name": "run-20240102",
            "uuid": uuid,
            "item_count": len(FILES),
        }
        assert "dtool_s3_consumer" in queued_dags(uri)

    captured = capfd.readouterr()
    assert CANARY not in captured.out + captured.err + caplog.text
    assert files_containing(Path(os.environ["AIRFLOW_HOME"]), CANARY) == []
