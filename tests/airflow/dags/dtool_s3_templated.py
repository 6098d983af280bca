"""expiry, limit and resume (and the connection id) from templates."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG
from dtool_s3_airflow.operators import (
    DtoolS3CopyOperator,
    DtoolS3ListOperator,
    DtoolS3PublishOperator,
)

with DAG(
    "dtool_s3_templated",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    params={
        "conn": "",
        "archive": "",
        "offsite": "",
        "frozen_uri": "",
        "limit": "",
        "expiry": "",
        "resume": "",
    },
) as dag:
    DtoolS3ListOperator(
        task_id="list",
        base_uri="s3://{{ params.archive }}",
        limit="{{ params.limit }}",
        dtool_s3_conn_id="{{ params.conn }}",
    )
    DtoolS3PublishOperator(
        task_id="publish",
        uri="{{ params.frozen_uri }}",
        expiry="{{ params.expiry }}",
        dtool_s3_conn_id="{{ params.conn }}",
    )
    DtoolS3CopyOperator(
        task_id="copy",
        source_uri="{{ params.frozen_uri }}",
        dest_base_uri="s3://{{ params.offsite }}",
        source_conn_id="{{ params.conn }}",
        dest_conn_id="offsite_s3",
        resume="{{ params.resume }}",
        asset_alias=None,
    )
