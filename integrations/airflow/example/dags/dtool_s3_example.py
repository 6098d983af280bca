"""Instrument run -> archive -> off-site copy -> published for collaborators.

An Airflow DAG using every dtool S3 operator. It needs two ``dtools3`` connections,
``archive_s3`` and ``offsite_s3``; ``example/run.py`` runs it against loopback servers.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG
from dtool_s3_airflow.operators import (
    DtoolS3CopyOperator,
    DtoolS3CreateDatasetOperator,
    DtoolS3FreezeOperator,
    DtoolS3ListOperator,
    DtoolS3PublishOperator,
)
from dtool_s3_airflow.sensors import DtoolS3DatasetSensor

with DAG(
    "dtool_s3_example",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    params={"archive": "archive", "offsite": "offsite", "source_dir": "/data/run"},
    tags=["dtool"],
) as dag:
    # A proto dataset first, so that the annotations of a real pipeline could go in before
    # the freeze; with freeze=True (the default) create freezes at once.
    create = DtoolS3CreateDatasetOperator(
        task_id="create",
        name="run-{{ ds_nodash }}",
        base_uri="s3://{{ params.archive }}",
        source_dir="{{ params.source_dir }}",
        readme={"instrument": "microscope-1", "run_date": "{{ ds }}"},
        freeze=False,
        dtool_s3_conn_id="archive_s3",
    )
    freeze = DtoolS3FreezeOperator(
        task_id="freeze", uri=create.output, dtool_s3_conn_id="archive_s3"
    )
    wait = DtoolS3DatasetSensor(
        task_id="wait",
        base_uri="s3://{{ params.archive }}",
        name="run-{{ ds_nodash }}",
        dtool_s3_conn_id="archive_s3",
        deferrable=True,
        poke_interval=5,
        timeout=3600,
    )
    copy = DtoolS3CopyOperator(
        task_id="copy",
        source_uri=wait.output,
        dest_base_uri="s3://{{ params.offsite }}",
        source_conn_id="archive_s3",
        dest_conn_id="offsite_s3",
        resume=True,
    )
    publish = DtoolS3PublishOperator(
        task_id="publish", uri=copy.output, expiry=3600, dtool_s3_conn_id="offsite_s3"
    )
    listing = DtoolS3ListOperator(
        task_id="list",
        base_uri="s3://{{ params.offsite }}",
        limit=50,
        dtool_s3_conn_id="offsite_s3",
    )
    freeze >> wait
    publish >> listing
