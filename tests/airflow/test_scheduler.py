"""The example DAG scheduled for real: API server, scheduler (LocalExecutor) and triggerer.

Unlike ``dag.test()``, which runs every task and trigger inside the test process, here the
scheduler hands the tasks to executor workers (one process per task, talking to the API server),
and the sensor's deferral goes to the triggerer process.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.airflow.cluster import airflow_cluster
from tests.airflow.conftest import CANARY, Endpoints
from tests.airflow.helpers import files_containing, write_files

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "integrations" / "airflow" / "example" / "dags"
DAG_ID = "dtool_s3_example"
RUN_ID = "scheduled-1"
# The example names datasets after the logical date (ds_nodash), which a CLI trigger omits.
LOGICAL_DATE = "2024-01-02T00:00:00+00:00"


# 50-80 s on two shared cores: three Airflow processes start, and six tasks each start a worker.
@pytest.mark.slow
def test_example_dag_runs_under_a_real_scheduler_and_triggerer(
    endpoints: Endpoints, tmp_path: Path
) -> None:
    source = write_files(tmp_path / "run", {"a.txt": b"alpha\n", "sub/b.txt": b"beta\n"})
    home = tmp_path / "airflow"
    home.mkdir()
    conf = (
        f'{{"archive": "{endpoints.archive_bucket}", "offsite": "{endpoints.offsite_bucket}", '
        f'"source_dir": "{source}"}}'
    )
    with airflow_cluster(home, EXAMPLE_DAGS) as cluster:
        cluster.airflow("dags", "trigger", DAG_ID, "-r", RUN_ID, "-c", conf, "-l", LOGICAL_DATE)
        state = cluster.wait_for_run(DAG_ID, RUN_ID, timeout=110)
        tasks = cluster.task_states(DAG_ID, RUN_ID)
        report = cluster.failure_report(DAG_ID, RUN_ID) if state != "success" else ""
        copied = cluster.xcom(DAG_ID, RUN_ID, "copy") if state == "success" else None

    assert state == "success", report
    assert set(tasks.values()) == {"success"}, tasks
    # The sensor deferred, and its trigger fired in the triggerer process (whose log this is).
    wait_logs = home / "logs" / f"dag_id={DAG_ID}" / f"run_id={RUN_ID}" / "task_id=wait"
    [trigger_log] = wait_logs.glob("attempt=1.log.trigger.*.log")
    assert "'status': 'success'" in trigger_log.read_text()
    uuid = str(copied).rsplit("/", 1)[1]
    assert copied == f"s3://{endpoints.offsite_bucket}/{uuid}"
    keys = endpoints.offsite.client().list_objects_v2(Bucket=endpoints.offsite_bucket)
    assert any(obj["Key"].startswith(f"offsite/{uuid}/") for obj in keys["Contents"])
    assert files_containing(home, CANARY) == []
