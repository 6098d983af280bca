"""OpenLineage facets of create, freeze, copy and publish, and ``[operators] default_deferrable``.

The operators run for real against the loopback endpoints (``execute`` called directly, as the
task runner does); the facets are what the openlineage provider would collect afterwards.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from dtool_s3_airflow import sensors
from dtool_s3_airflow.operators import (
    DtoolS3CopyOperator,
    DtoolS3CreateDatasetOperator,
    DtoolS3FreezeOperator,
    DtoolS3PublishOperator,
)

from tests.airflow.conftest import ARCHIVE_CONN, OFFSITE_CONN, Endpoints
from tests.airflow.helpers import write_files

pytest.importorskip("airflow.providers.openlineage")

CONTEXT: dict[str, Any] = {"outlet_events": {}}


def datasets(lineage: Any) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    def pairs(found: list[Any]) -> list[tuple[str, str]]:
        return [(dataset.namespace, dataset.name) for dataset in found]

    return pairs(lineage.inputs), pairs(lineage.outputs)


def test_datasets_are_named_by_bucket_and_key_root(endpoints: Endpoints, tmp_path: Path) -> None:
    archive, offsite = endpoints.archive_bucket, endpoints.offsite_bucket
    source = write_files(tmp_path / "run", {"a.txt": b"a"})
    create = DtoolS3CreateDatasetOperator(
        task_id="create",
        name="lineage",
        base_uri=f"s3://{archive}",
        source_dir=str(source),
        freeze=False,
        dtool_s3_conn_id=ARCHIVE_CONN,
        asset_alias=None,
    )
    uri = create.execute(CONTEXT)
    uuid = uri.rsplit("/", 1)[1]
    freeze = DtoolS3FreezeOperator(
        task_id="freeze", uri=uri, dtool_s3_conn_id=ARCHIVE_CONN, asset_alias=None
    )
    freeze.execute(CONTEXT)
    copy = DtoolS3CopyOperator(
        task_id="copy",
        source_uri=uri,
        dest_base_uri=f"s3://{offsite}",
        source_conn_id=ARCHIVE_CONN,
        dest_conn_id=OFFSITE_CONN,
        asset_alias=None,
    )
    copied = copy.execute(CONTEXT)
    publish = DtoolS3PublishOperator(task_id="publish", uri=copied, dtool_s3_conn_id=OFFSITE_CONN)
    publish.execute(CONTEXT)

    in_archive = (f"s3://{archive}", uuid)
    # The offsite connection's dataset prefix is part of the key, so of the name.
    in_offsite = (f"s3://{offsite}", f"offsite/{uuid}")
    assert datasets(create.get_openlineage_facets_on_complete(None)) == (
        [("file", str(source))],
        [in_archive],
    )
    assert datasets(freeze.get_openlineage_facets_on_complete(None)) == ([], [in_archive])
    assert datasets(copy.get_openlineage_facets_on_complete(None)) == ([in_archive], [in_offsite])
    assert datasets(publish.get_openlineage_facets_on_complete(None)) == ([in_offsite], [])
    assert datasets(extracted(copy)) == ([in_archive], [in_offsite])


def extracted(operator: Any) -> Any:
    """What the openlineage provider's listener collects for a task that succeeded."""
    from airflow.providers.openlineage.extractors.manager import ExtractorManager
    from airflow.utils.state import TaskInstanceState

    run = SimpleNamespace(run_id="manual-1")
    return ExtractorManager().extract_metadata(run, operator, TaskInstanceState.SUCCESS, None)


def test_a_local_copy_is_a_file_dataset(endpoints: Endpoints, tmp_path: Path) -> None:
    create = DtoolS3CreateDatasetOperator(
        task_id="create",
        name="local",
        base_uri=f"s3://{endpoints.archive_bucket}",
        files={"a": str(write_files(tmp_path / "in", {"a": b"a"}) / "a")},
        dtool_s3_conn_id=ARCHIVE_CONN,
        asset_alias=None,
    )
    uri = create.execute(CONTEXT)
    copy = DtoolS3CopyOperator(
        task_id="copy",
        source_uri=uri,
        dest_base_uri=str(tmp_path / "out"),
        source_conn_id=ARCHIVE_CONN,
        asset_alias=None,
    )
    (tmp_path / "out").mkdir()
    copy.execute(CONTEXT)

    assert datasets(create.get_openlineage_facets_on_complete(None))[0] == [
        ("file", str(tmp_path / "in" / "a"))
    ]
    outputs = datasets(copy.get_openlineage_facets_on_complete(None))[1]
    assert outputs == [("file", str(tmp_path / "out" / "local"))]


def test_the_sensor_follows_default_deferrable(monkeypatch: pytest.MonkeyPatch) -> None:
    def sensor() -> Any:
        return importlib.reload(sensors).DtoolS3DatasetSensor(
            task_id="wait", base_uri="s3://b-1", name="n"
        )

    try:
        monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True")
        assert sensor().deferrable is True
        monkeypatch.delenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE")
        assert sensor().deferrable is False
    finally:
        importlib.reload(sensors)
