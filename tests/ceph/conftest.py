"""Ceph RGW for the tests where S3 fidelity matters, started once per test run.

The ``s3`` fixture of tests/conftest.py is overridden here, so its ``bucket``, ``dtool`` and
``oracle`` fixtures work on Ceph for the tests in this directory.

Under pytest-xdist every worker has a session of its own, and the ``xdist_group`` mark cannot
keep tests together (``--dist loadgroup`` silently stopped grouping with pytest 9.2). So the
workers of one run share a cluster: the first that needs it starts it and writes how to reach
it next to the workers' temporary directories, the others attach, and the first stops it once
no live worker is attached any more.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict
from pathlib import Path

import pytest

from tests.support.ceph import CephServer, ceph_server
from tests.support.servers import ceph_available

# A safety net only: the starter waits for the other workers to finish their whole session.
_SHARE_TIMEOUT = 3600.0


@pytest.fixture(scope="session")
def ceph(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CephServer]:
    """A single-node Ceph cluster with radosgw on 127.0.0.1 (skipped if Ceph is missing)."""
    if not ceph_available():
        reason = "Ceph (radosgw, ceph-mon, ceph-osd, ceph-common) is not installed"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}: run scripts/install-ceph.sh as root")
        pytest.skip(f"{reason}; scripts/install-ceph.sh installs it (as root)")
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        with ceph_server() as server:
            yield server
    else:
        # The parent of a worker's base temp directory is common to all workers of the run.
        with _shared_ceph(tmp_path_factory.getbasetemp().parent, worker) as server:
            yield server


@pytest.fixture(scope="session")
def s3(ceph: CephServer) -> CephServer:
    """Points ``bucket``, ``dtool`` and ``oracle`` of tests/conftest.py at Ceph."""
    return ceph


@contextmanager
def _shared_ceph(shared: Path, worker: str) -> Iterator[CephServer]:
    lock, info, users = shared / "ceph.lock", shared / "ceph-server.json", shared / "ceph-users"
    users.mkdir(exist_ok=True)
    with ExitStack() as cluster:
        with _locked(lock):
            owner = not info.exists()
            if owner:
                server = cluster.enter_context(ceph_server())
                info.touch(mode=0o600)
                info.write_text(json.dumps({**asdict(server), "data_dir": str(server.data_dir)}))
            else:
                data = json.loads(info.read_text())
                server = CephServer(**{**data, "data_dir": Path(data["data_dir"])})
            (users / worker).write_text(str(os.getpid()))
        try:
            yield server
        finally:
            (users / worker).unlink()
            if owner:
                _retire(lock, info, users)


def _retire(lock: Path, info: Path, users: Path) -> None:
    """Wait until no other worker uses the cluster, then keep new ones from attaching."""
    deadline = time.monotonic() + _SHARE_TIMEOUT
    while True:
        with _locked(lock):
            if not _live_users(users) or time.monotonic() > deadline:
                info.unlink()
                return
        time.sleep(0.5)


def _live_users(users: Path) -> list[str]:
    """The workers attached to the shared cluster whose process still runs."""
    live = []
    for entry in users.iterdir():
        try:
            os.kill(int(entry.read_text()), 0)
        except (ValueError, ProcessLookupError):
            continue
        live.append(entry.name)
    return live


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
