"""Copies: two endpoints with one bucket name, resume, local sources and destinations, freeze."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import dtoolcore

from dtool_s3_core import create_dataset, open_s3
from tests.airflow.conftest import Endpoints
from tests.airflow.helpers import (
    asset_events,
    checked,
    dtool_cli,
    on,
    own_environment,
    run_dag,
    task_states,
    write_files,
    xcom,
)
from tests.conftest import SOURCE_FILES, make_source_dataset

FILES = {"one.txt": b"1\n", "two/two.txt": b"22\n", "three.bin": bytes(range(256))}


def test_same_bucket_name_on_two_endpoints_stays_separate(
    endpoints: Endpoints, tmp_path: Path
) -> None:
    bucket = f"shared-{uuid.uuid4().hex[:10]}"
    endpoints.archive.create_bucket(bucket)
    endpoints.offsite.create_bucket(bucket)
    environ = own_environment()

    dag_run = run_dag(
        "dtool_s3_same_name", bucket=bucket, source_dir=str(write_files(tmp_path / "src", FILES))
    )

    assert dag_run.state == "success", task_states(dag_run)
    assert own_environment() == environ
    created = xcom(dag_run, "create")
    assert xcom(dag_run, "copy") == xcom(dag_run, "again") == created
    # The bucket name is the same, so each endpoint needs its own dtool environment.
    for server, prefix in ((endpoints.archive, ""), (endpoints.offsite, "offsite/")):
        cli = dtool_cli(tmp_path / server.endpoint_url.rsplit(":", 1)[1], (server, bucket))
        assert checked(cli, created)[created]["number_of_items"] == len(FILES)
        keys = [o["Key"] for o in server.client().list_objects_v2(Bucket=bucket)["Contents"]]
        # Each endpoint holds its own copy, under its own connection's dataset prefix.
        assert any(key.startswith(f"{prefix}{created.rsplit('/', 1)[1]}/") for key in keys)
        assert any(key.startswith("offsite/") for key in keys) == bool(prefix)
    assert [e["task_id"] for e in asset_events(created)] == ["create", "copy", "again"]


def test_freeze_resume_and_local_copies(endpoints: Endpoints, tmp_path: Path) -> None:
    archive = endpoints.archive_bucket
    source = write_files(tmp_path / "src", FILES)
    with on(endpoints.archive, archive):
        proto_uri = create_dataset("to-freeze", f"s3://{archive}", source_dir=source, freeze=False)
        frozen_uri = create_dataset("to-copy", f"s3://{archive}", source_dir=source)
        src = dtoolcore.DataSet.from_uri(frozen_uri)
    # An interrupted copy to the bucket of the same name on the other endpoint: the destination
    # proto dataset holds one of the three items.
    endpoints.offsite.create_bucket(archive)
    with on(endpoints.offsite, archive, dataset_prefix="offsite/"):
        partial = open_s3(f"s3://{archive}/{src.uuid}")
        partial.create_proto({**src.admin_metadata, "type": "protodataset"})
        partial.upload(source / "one.txt", "one.txt")
    local = make_source_dataset(tmp_path / "local")
    local_dir = tmp_path / "copies"
    local_dir.mkdir()

    dag_run = run_dag(
        "dtool_s3_steps",
        proto_uri=proto_uri,
        frozen_uri=frozen_uri,
        offsite=archive,
        local_uri=str(local),
        archive=archive,
        local_dir=str(local_dir),
    )

    assert dag_run.state == "success", task_states(dag_run)
    resumed, from_local, to_local = (xcom(dag_run, t) for t in ("resume", "from_local", "to_local"))
    assert xcom(dag_run, "freeze") == proto_uri
    assert resumed == frozen_uri
    assert from_local.startswith(f"s3://{archive}/")
    assert to_local.startswith("file://") and to_local.endswith("/to-freeze")
    cli = dtool_cli(tmp_path, (endpoints.archive, archive))
    expected = {proto_uri: FILES, from_local: SOURCE_FILES, to_local: FILES}
    for uri, summary in checked(cli, *expected).items():
        assert summary["number_of_items"] == len(expected[uri]), uri
    offsite_cli = dtool_cli(tmp_path / "offsite", (endpoints.offsite, archive))
    assert checked(offsite_cli, resumed)[resumed]["number_of_items"] == len(FILES)
    hello = f"{hashlib.sha1(b'hello.txt').hexdigest()},k-9,hello.txt"
    assert hello in cli("overlays", "show", from_local).splitlines()
    for uri, task_id in ((proto_uri, "freeze"), (resumed, "resume"), (from_local, "from_local")):
        [event] = asset_events(uri)
        assert event["task_id"] == task_id
        assert event["extra"]["item_count"] == (3 if task_id != "from_local" else len(SOURCE_FILES))
    assert [e["task_id"] for e in asset_events(to_local)] == ["to_local"]
