"""Independent tasks that each fail for a reason the user can fix."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG
from dtool_s3_airflow.operators import (
    DtoolS3CopyOperator,
    DtoolS3CreateDatasetOperator,
    DtoolS3ListOperator,
)
from dtool_s3_airflow.sensors import DtoolS3DatasetSensor

with DAG(
    "dtool_s3_failures",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    params={"missing": "", "frozen_uri": "", "archive": ""},
) as dag:
    DtoolS3CreateDatasetOperator(
        task_id="missing_bucket",
        name="never",
        base_uri="s3://{{ params.missing }}",
        dtool_s3_conn_id="archive_s3",
    )
    DtoolS3ListOperator(
        task_id="half_credentials",
        base_uri="s3://{{ params.archive }}",
        dtool_s3_conn_id="broken_s3",
    )
    DtoolS3CopyOperator(
        task_id="exists",
        source_uri="{{ params.frozen_uri }}",
        dest_base_uri="s3://{{ params.archive }}",
        source_conn_id="archive_s3",
    )
    DtoolS3DatasetSensor(
        task_id="no_connection",
        base_uri="s3://{{ params.archive }}",
        name="anything",
        dtool_s3_conn_id="undefined_s3",
        deferrable=True,
        poke_interval=1,
        timeout=30,
    )
