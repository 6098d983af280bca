"""A real Airflow 3 deployment in miniature for one test: API server, scheduler, triggerer.

Each component is its own ``airflow`` process, as in production, sharing one SQLite database
under a temporary AIRFLOW_HOME. The scheduler runs tasks with the LocalExecutor (the executor
Airflow 3 offers for SQLite); tasks reach the metadata database only through the API server's
execution API. The DAG is serialized once with ``airflow dags reserialize`` instead of running a
DAG processor, which saves one process. Every process is started in its own session and stopped
through its process group (its own id), with SIGTERM first.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen
from typing import IO

from cryptography.fernet import Fernet

from tests.support.servers import LOOPBACK, free_port

AIRFLOW = Path(sys.executable).parent / "airflow"
STARTUP_TIMEOUT = 90.0
STOP_TIMEOUT = 15.0
_TERMINAL = ("success", "failed")

# Exits with the test process if it is killed outright (PR_SET_PDEATHSIG), then becomes airflow.
_SHIM = """
import ctypes, os, signal, sys
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
except (AttributeError, OSError):
    pass
os.execv(sys.argv[1], sys.argv[1:])
"""


@dataclass
class Cluster:
    home: Path
    env: dict[str, str]

    @property
    def database(self) -> Path:
        return self.home / "airflow.db"

    def airflow(self, *args: str) -> str:
        """Run one ``airflow`` command to completion; return its output."""
        result = subprocess.run(
            [str(AIRFLOW), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=STARTUP_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{result.stderr[-3000:]}")
        return result.stdout

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float) -> str:
        """Poll the database until the run ends; return its state (or the last one seen)."""
        deadline = time.monotonic() + timeout
        state = "missing"
        while time.monotonic() < deadline:
            state = self._query(
                "SELECT state FROM dag_run WHERE dag_id = ? AND run_id = ?", dag_id, run_id
            ).get("state", "missing")
            if state in _TERMINAL:
                return state
            time.sleep(1.0)
        return state

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        with sqlite3.connect(self.database, timeout=30) as db:
            rows = db.execute(
                "SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?",
                (dag_id, run_id),
            ).fetchall()
        return {task_id: str(state) for task_id, state in rows}

    def failure_report(self, dag_id: str, run_id: str) -> str:
        """The task states, the last lines of each unsuccessful task's logs and of every
        component's log: what a failed run in CI leaves to read."""
        states = self.task_states(dag_id, run_id)
        parts = [f"task states: {states}"]
        run_logs = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
        for task_id, state in sorted(states.items()):
            if state != "success":
                for log in sorted(run_logs.glob(f"task_id={task_id}/*.log*")):
                    parts.append(f"--- {task_id} ({state}): {log.name}\n{_tail(log)}")
        for component in ("scheduler", "triggerer", "api-server"):
            parts.append(f"--- {component}.log\n{_tail(self.home / f'{component}.log')}")
        return "\n".join(parts)

    def xcom(self, dag_id: str, run_id: str, task_id: str) -> object:
        row = self._query(
            "SELECT value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = ? "
            "AND key = 'return_value'",
            dag_id,
            run_id,
            task_id,
        )
        value = row["value"]
        return json.loads(value.decode() if isinstance(value, bytes) else value)

    def _query(self, sql: str, *params: str) -> dict[str, object]:
        with sqlite3.connect(self.database, timeout=30) as db:
            db.row_factory = sqlite3.Row
            row = db.execute(sql, params).fetchone()
        return dict(row) if row is not None else {}


@contextmanager
def airflow_cluster(home: Path, dags: Path) -> Iterator[Cluster]:
    """Migrate a fresh database, serialize the DAGs and run the three components."""
    port = free_port()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{LOOPBACK}:{port}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": Fernet.generate_key().decode(),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": (
            # Four processes write one SQLite file; a loaded CI machine can hold its lock
            # longer than the driver's default 5 s wait, which fails a task for nothing.
            f"sqlite:///{home / 'airflow.db'}?timeout=60"
        ),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "120",
        "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
    }
    env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
    cluster = Cluster(home, env)
    cluster.airflow("db", "migrate")
    with ExitStack() as stack:
        procs: list[Popen[bytes]] = []
        stack.callback(_stop_all, procs)
        api = _process(
            cluster,
            stack,
            procs,
            "api-server",
            "--apps",
            "execution",
            "-H",
            LOOPBACK,
            "-p",
            str(port),
        )
        # Started while the API server comes up: the scheduler has nothing to run before the
        # DAG is serialized and triggered.
        _process(cluster, stack, procs, "scheduler")
        _process(cluster, stack, procs, "triggerer")
        cluster.airflow("dags", "reserialize")
        _wait_for_http(f"http://{LOOPBACK}:{port}/execution/health", api, home / "api-server.log")
        yield cluster


def _process(
    cluster: Cluster, stack: ExitStack, procs: list[Popen[bytes]], command: str, *args: str
) -> Popen[bytes]:
    """Start ``airflow <command>`` logging to ``<home>/<command>.log``; add it to ``procs``."""
    log = stack.enter_context((cluster.home / f"{command}.log").open("wb"))
    proc = _spawn(cluster, log, (command, *args))
    procs.append(proc)
    return proc


def _spawn(cluster: Cluster, log: IO[bytes], args: tuple[str, ...]) -> Popen[bytes]:
    return Popen(
        [sys.executable, "-c", _SHIM, str(AIRFLOW), *args],
        env=cluster.env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop_all(procs: list[Popen[bytes]]) -> None:
    """SIGTERM to every process group (each leader with its workers) at once, as each shutdown
    takes seconds; SIGKILL to a group still there after STOP_TIMEOUT."""
    for proc in procs:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _tail(path: Path, chars: int = 2500) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(none)"


def _wait_for_http(url: str, proc: Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the API server exited early:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    raise RuntimeError(f"the API server did not answer {url}:\n{log_path.read_text()[-3000:]}")
