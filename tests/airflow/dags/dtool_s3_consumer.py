"""Scheduled on the provider's default AssetAlias: runs whenever a dataset lands."""

from __future__ import annotations

from datetime import datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, AssetAlias
from dtool_s3_airflow.assets import DEFAULT_ASSET_ALIAS

with DAG(
    "dtool_s3_consumer",
    schedule=[AssetAlias(DEFAULT_ASSET_ALIAS)],
    start_date=datetime(2024, 1, 1),
    is_paused_upon_creation=False,
) as dag:
    EmptyOperator(task_id="consume")
