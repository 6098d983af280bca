"""Freeze, resume an interrupted copy, and copies from and to local directories."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG
from dtool_s3_airflow.operators import DtoolS3CopyOperator, DtoolS3FreezeOperator

with DAG(
    "dtool_s3_steps",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    params={
        "proto_uri": "",
        "frozen_uri": "",
        "offsite": "",
        "local_uri": "",
        "archive": "",
        "local_dir": "",
    },
) as dag:
    freeze = DtoolS3FreezeOperator(
        task_id="freeze", uri="{{ params.proto_uri }}", dtool_s3_conn_id="archive_s3"
    )
    DtoolS3CopyOperator(
        task_id="resume",
        source_uri="{{ params.frozen_uri }}",
        dest_base_uri="s3://{{ params.offsite }}",
        source_conn_id="archive_s3",
        dest_conn_id="offsite_s3",
        resume=True,
    )
    DtoolS3CopyOperator(
        task_id="from_local",
        source_uri="{{ params.local_uri }}",
        dest_base_uri="s3://{{ params.archive }}",
        dest_conn_id="archive_s3",
    )
    DtoolS3CopyOperator(
        task_id="to_local",
        source_uri=freeze.output,
        dest_base_uri="{{ params.local_dir }}",
        source_conn_id="archive_s3",
    )
