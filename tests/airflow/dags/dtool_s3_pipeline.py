"""create -> sensors (poke and deferrable) -> copy to a second endpoint -> publish -> list."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG
from dtool_s3_airflow.operators import (
    DtoolS3CopyOperator,
    DtoolS3CreateDatasetOperator,
    DtoolS3ListOperator,
    DtoolS3PublishOperator,
)
from dtool_s3_airflow.sensors import DtoolS3DatasetSensor

with DAG(
    "dtool_s3_pipeline",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    params={"archive": "archive", "offsite": "offsite", "source_dir": "."},
) as dag:
    create = DtoolS3CreateDatasetOperator(
        task_id="create",
        name="run-{{ ds_nodash }}",
        base_uri="s3://{{ params.archive }}",
        source_dir="{{ params.source_dir }}",
        readme={"instrument": "x", "run": "{{ ds }}"},
        dtool_s3_conn_id="archive_s3",
    )
    wait = DtoolS3DatasetSensor(
        task_id="wait",
        base_uri="s3://{{ params.archive }}",
        name="run-{{ ds_nodash }}",
        dtool_s3_conn_id="archive_s3",
        poke_interval=1,
        timeout=60,
    )
    wait_deferred = DtoolS3DatasetSensor(
        task_id="wait_deferred",
        base_uri="s3://{{ params.archive }}",
        name="run-{{ ds_nodash }}",
        dtool_s3_conn_id="archive_s3",
        deferrable=True,
        poke_interval=1,
        timeout=60,
    )
    copy = DtoolS3CopyOperator(
        task_id="copy",
        source_uri=create.output,
        dest_base_uri="s3://{{ params.offsite }}",
        source_conn_id="archive_s3",
        dest_conn_id="offsite_s3",
    )
    publish = DtoolS3PublishOperator(
        task_id="publish", uri=copy.output, expiry=3600, dtool_s3_conn_id="offsite_s3"
    )
    listing = DtoolS3ListOperator(
        task_id="list", base_uri="s3://{{ params.offsite }}", dtool_s3_conn_id="offsite_s3"
    )
    create >> [wait, wait_deferred] >> copy
    publish >> listing
