"""Run the test DAGs with dag.test() and read what they left in the metadata database."""

from __future__ import annotations

import importlib.util
import json
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.airflow.conftest import DAGS
from tests.conftest import VENV_BIN, Dtool, bucket_env

LOGICAL_DATE = datetime(2024, 1, 2, tzinfo=UTC)


def load_dag(dag_id: str) -> Any:
    """Import ``dags/<dag_id>.py`` and return its ``dag``."""
    spec = importlib.util.spec_from_file_location(
        f"airflow_test_dags.{dag_id}", DAGS / f"{dag_id}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


def run_dag(dag_id: str, **conf: Any) -> Any:
    """Run the DAG once with ``conf`` as its params; return the DagRun."""
    return load_dag(dag_id).test(logical_date=LOGICAL_DATE, run_conf=conf)


def xcom(dag_run: Any, task_id: str, key: str = "return_value") -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        row = session.scalars(
            select(XComModel).where(
                XComModel.dag_id == dag_run.dag_id,
                XComModel.run_id == dag_run.run_id,
                XComModel.task_id == task_id,
                XComModel.key == key,
            )
        ).one()
        return XComModel.deserialize_value(row)


def task_states(dag_run: Any) -> dict[str, str]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(TaskInstance).where(
                TaskInstance.dag_id == dag_run.dag_id, TaskInstance.run_id == dag_run.run_id
            )
        )
        return {ti.task_id: str(ti.state) for ti in rows}


def asset_events(uri: str) -> list[dict[str, Any]]:
    """The events recorded for the Asset ``uri``: source task and extra."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.uri == uri)
            .order_by(AssetEvent.id)
        )
        return [{"task_id": e.source_task_id, "extra": dict(e.extra)} for e in rows]


def queued_dags(uri: str) -> set[str]:
    """DAGs waiting to be scheduled because of an event on the Asset ``uri``."""
    from airflow.models.asset import AssetDagRunQueue, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(AssetDagRunQueue.target_dag_id)
            .join(AssetModel, AssetDagRunQueue.asset_id == AssetModel.id)
            .where(AssetModel.uri == uri)
        )
        return set(rows)


def dtool_cli(tmp_path: Path, *locations: tuple[Any, str]) -> Dtool:
    """The dtool CLI configured for each (server, bucket), through its own environment."""
    runner = Dtool(
        VENV_BIN, {"HOME": str(tmp_path / "home"), "DTOOL_CACHE_DIRECTORY": str(tmp_path / "cli")}
    )
    for server, bucket in locations:
        runner.env.update(bucket_env(server, bucket))
    return runner


def files_containing(root: Path, needle: str) -> list[str]:
    """Files below ``root`` whose bytes contain ``needle``."""
    data = needle.encode()
    return [str(p) for p in root.rglob("*") if p.is_file() and data in p.read_bytes()]


def own_environment() -> dict[str, str]:
    """os.environ without the AIRFLOW_CTX_* variables Airflow itself sets for each task."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CTX_")}


def on(server: Any, bucket: str, **settings: Any) -> Any:
    """dtool_s3_core.override for ``bucket`` on ``server`` (test set-up outside Airflow)."""
    from dtool_s3_core import override

    return override(
        bucket,
        endpoint_url=server.endpoint_url,
        access_key_id=server.access_key,
        secret_access_key=server.secret_key,
        **settings,
    )


def write_files(root: Path, files: dict[str, bytes]) -> Path:
    for relpath, content in files.items():
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return root


def checked(cli: Dtool, *uris: str) -> dict[str, dict[str, Any]]:
    """Run ``dtool verify -f`` and ``dtool summary`` on each URI (concurrently: the CLI is slow
    to start); return each dataset's summary. Fails the test if a dataset does not verify."""

    def check(uri: str) -> dict[str, Any]:
        verdict = cli("verify", "-f", uri)
        assert "All good" in verdict, (uri, verdict)
        summary: dict[str, Any] = json.loads(cli("summary", "-f", "json", uri))
        return summary

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(uris, pool.map(check, uris), strict=True))
