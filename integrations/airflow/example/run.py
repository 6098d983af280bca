"""Run the example DAG end to end on this machine, with nothing but loopback S3 servers.

Usage: ``python integrations/airflow/example/run.py`` (with the project's virtualenv).

It creates a throw-away AIRFLOW_HOME, starts two moto S3 servers on 127.0.0.1 (the "archive" and
the "off-site" endpoint), defines the ``archive_s3`` and ``offsite_s3`` connections through
``AIRFLOW_CONN_*`` variables of this process, runs ``dags/dtool_s3_example.py`` once with
``dag.test()``, and checks the datasets with the dtool command line. Exits 1 with one line on
failure.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

HERE = Path(__file__).resolve().parent
DTOOL = Path(sys.executable).parent / "dtool"
LOGICAL_DATE = datetime(2024, 1, 2, tzinfo=UTC)
RUN_FILES = {
    "images/tile-001.tif": b"\x49\x49\x2a\x00" + bytes(2048),
    "images/tile-002.tif": b"\x49\x49\x2a\x00" + bytes(4096),
    "metadata/settings.json": b'{"exposure_ms": 20, "objective": "40x"}\n',
}

log = logging.getLogger("dtool_s3_airflow.example")


class ExampleFailed(RuntimeError):
    """A check of the example's result failed."""


@contextmanager
def airflow_home() -> Iterator[Path]:
    """Point Airflow at a temporary home and the example's DAG folder (before it is imported)."""
    home = Path(tempfile.mkdtemp(prefix="dtool-s3-airflow-example-"))
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(HERE / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            # Airflow's own per-task log lines would bury the summary; warnings still show.
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        }
    )
    try:
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


def connection(server: Any, **extra: Any) -> str:
    return json.dumps(
        {
            "conn_type": "dtools3",
            "host": server.endpoint_url,
            "login": server.access_key,
            "password": server.secret_key,
            "extra": extra,
        }
    )


def dtool(*args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(DTOOL), *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise ExampleFailed(f"dtool {' '.join(args[:1])} failed: {last}")
    return result.stdout


def xcoms(dag_run: Any) -> dict[str, Any]:
    """The return values of the run's tasks."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(XComModel).where(
                XComModel.dag_id == dag_run.dag_id,
                XComModel.run_id == dag_run.run_id,
                XComModel.key == "return_value",
            )
        )
        return {row.task_id: XComModel.deserialize_value(row) for row in rows}


def run(work: Path) -> None:
    from tests.support.servers import moto_server

    with ExitStack() as stack:
        archive = stack.enter_context(moto_server())
        offsite = stack.enter_context(moto_server())
        archive.create_bucket("archive")
        offsite.create_bucket("offsite")
        log.info(
            "archive endpoint %s, off-site endpoint %s", archive.endpoint_url, offsite.endpoint_url
        )
        os.environ["AIRFLOW_CONN_ARCHIVE_S3"] = connection(archive, dataset_prefix="raw/")
        os.environ["AIRFLOW_CONN_OFFSITE_S3"] = connection(offsite, dataset_prefix="mirror/")
        source = work / "run"
        for relpath, content in RUN_FILES.items():
            (source / relpath).parent.mkdir(parents=True, exist_ok=True)
            (source / relpath).write_bytes(content)

        from airflow.utils import db

        db.resetdb()
        sys.path.insert(0, str(HERE / "dags"))
        from dtool_s3_example import dag

        dag_run = dag.test(
            logical_date=LOGICAL_DATE,
            run_conf={"archive": "archive", "offsite": "offsite", "source_dir": str(source)},
        )
        if dag_run.state != "success":
            raise ExampleFailed(f"the example DAG run ended as {dag_run.state}; see the log above")
        check(xcoms(dag_run), archive, offsite, work)


def check(results: dict[str, Any], archive: Any, offsite: Any, work: Path) -> None:
    env = {
        "HOME": str(work / "home"),
        "DTOOL_CACHE_DIRECTORY": str(work / "cache"),
        "DTOOL_S3_ENDPOINT_archive": archive.endpoint_url,
        "DTOOL_S3_ACCESS_KEY_ID_archive": archive.access_key,
        "DTOOL_S3_SECRET_ACCESS_KEY_archive": archive.secret_key,
        "DTOOL_S3_ENDPOINT_offsite": offsite.endpoint_url,
        "DTOOL_S3_ACCESS_KEY_ID_offsite": offsite.access_key,
        "DTOOL_S3_SECRET_ACCESS_KEY_offsite": offsite.secret_key,
    }
    for task_id in ("freeze", "copy"):
        uri = results[task_id]
        if "All good" not in dtool("verify", "-f", uri, env=env):
            raise ExampleFailed(f"dtool verify found problems in {uri}")
        log.info("%-7s %s verified with dtool", task_id, uri)
    published = json.loads(dtool("summary", "-f", "json", results["publish"], env=env))
    if published["number_of_items"] != len(RUN_FILES):
        raise ExampleFailed(f"the published dataset has {published['number_of_items']} items")
    log.info(
        "publish %s... read over HTTP: %s, %d items",
        results["publish"].split("?", 1)[0],
        published["name"],
        published["number_of_items"],
    )
    log.info("list    %s", [entry["name"] for entry in results["list"]])


def main() -> int:
    # fastapi's test client behind dag.test() warns about its own httpx use; not ours to fix.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette")
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("airflow example: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        with airflow_home() as home:
            run(home)
    except Exception as exc:
        log.error("FAILED: %s", " ".join(str(exc).split()) or type(exc).__name__)
        return 1
    log.info("OK: create -> freeze -> sensor -> copy to a second endpoint -> publish -> list")
    return 0


if __name__ == "__main__":
    sys.exit(main())
