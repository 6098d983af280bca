"""Two connections, one bucket name on two endpoints: create on one, copy to the other."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG
from dtool_s3_airflow.operators import DtoolS3CopyOperator, DtoolS3CreateDatasetOperator

with DAG(
    "dtool_s3_same_name",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    params={"bucket": "shared", "source_dir": "."},
) as dag:
    create = DtoolS3CreateDatasetOperator(
        task_id="create",
        name="shared-{{ ds_nodash }}",
        base_uri="s3://{{ params.bucket }}",
        source_dir="{{ params.source_dir }}",
        dtool_s3_conn_id="archive_s3",
    )
    copy = DtoolS3CopyOperator(
        task_id="copy",
        source_uri=create.output,
        dest_base_uri="s3://{{ params.bucket }}",
        source_conn_id="archive_s3",
        dest_conn_id="offsite_s3",
    )
    # A retried copy task: the destination is already complete, so this is a no-op.
    again = DtoolS3CopyOperator(
        task_id="again",
        source_uri=create.output,
        dest_base_uri="s3://{{ params.bucket }}",
        source_conn_id="archive_s3",
        dest_conn_id="offsite_s3",
        resume=True,
    )
    create >> copy >> again
