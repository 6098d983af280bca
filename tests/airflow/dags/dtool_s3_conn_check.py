"""List a bucket with the connection named in the run's conf, and report the client's region."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, get_current_context, task
from dtool_s3_airflow.hooks import DtoolS3Hook
from dtool_s3_airflow.operators import DtoolS3ListOperator

from dtool_s3_core._s3.client import S3Client

with DAG(
    "dtool_s3_conn_check",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    params={"conn": "", "bucket": ""},
) as dag:
    DtoolS3ListOperator(
        task_id="list", base_uri="s3://{{ params.bucket }}", dtool_s3_conn_id="{{ params.conn }}"
    )

    @task
    def region() -> str | None:
        """The region of the botocore client the connection's settings build."""
        params = get_current_context()["params"]
        config = DtoolS3Hook(params["conn"]).s3_config(f"s3://{params['bucket']}")
        assert config is not None
        region_name: str | None = S3Client(config)._client.meta.region_name
        return region_name

    region()
