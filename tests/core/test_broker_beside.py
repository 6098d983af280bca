"""dtool-s3 0.14.1 installed beside this package: which broker serves s3://, as the doctor says.

Both register a ``dtool.storage_brokers`` entry point for ``s3://`` and dtoolcore keeps the one
it loads last, in the order of the distributions on ``sys.path``. Within one site-packages that
order is the file system's, so these tests put dtool-s3 (the oracle's, copied) and a record of
this package on ``PYTHONPATH`` in the order each case needs: the outcome is then the same on
every machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from importlib.metadata import distribution
from pathlib import Path

import pytest

from tests.conftest import Dtool
from tests.support.servers import S3Server

# The README's command (Install: dtool-s3 beside) that removes dtool-s3's registration.
DROP_REGISTRATION = (
    "import importlib.metadata as m; "
    "[f.locate().unlink() for f in m.files('dtool-s3') if f.name == 'entry_points.txt']"
)


@pytest.fixture
def s3(s3_servers: Callable[[str], S3Server]) -> S3Server:
    """moto: nothing here depends on the server."""
    return s3_servers("moto")


def dtool_s3_beside(oracle: Dtool, where: Path) -> Path:
    """A directory holding the oracle's dtool-s3 0.14.1: its package linked, its record copied."""
    (site,) = (oracle.bin_dir.parent / "lib").glob("python3*/site-packages")
    where.mkdir()
    (where / "dtool_s3").symlink_to(site / "dtool_s3")
    (record,) = site.glob("dtool_s3-*.dist-info")
    # A copy: the fix below deletes a file of it.
    shutil.copytree(record, where / record.name)
    return where


def ours_first(where: Path, entry_points: str | None = None) -> Path:
    """A directory holding a record of this package (its entry points, or those given), to list
    it first."""
    ours = distribution("dtool-s3-core")
    record = where / f"dtool_s3_core-{ours.version}.dist-info"
    record.mkdir(parents=True)
    (record / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: dtool-s3-core\nVersion: {ours.version}\n"
    )
    (record / "entry_points.txt").write_text(
        entry_points or ours.read_text("entry_points.txt") or ""
    )
    return where


def python_path(*first: Path) -> str:
    return os.pathsep.join([*map(str, first), *filter(None, [os.environ.get("PYTHONPATH")])])


def broker_line(dtool: Dtool, bucket: str) -> str:
    result = dtool.run("s3", "doctor", f"s3://{bucket}")
    (line,) = [line for line in result.stdout.splitlines() if " broker " in line]
    return line.strip()


def test_the_doctor_says_which_broker_serves_s3_with_dtool_s3_beside(
    dtool: Dtool, oracle: Dtool, bucket: str, tmp_path: Path
) -> None:
    beside = dtool_s3_beside(oracle, tmp_path / "beside")
    # dtool-s3 listed first: this package, listed later, serves.
    dtool.env["PYTHONPATH"] = python_path(beside)
    assert broker_line(dtool, bucket) == (
        "OK   broker      s3:// is served by dtool_s3_core.broker:S3StorageBroker "
        f"(dtool-s3-core {distribution('dtool-s3-core').version})"
    )
    # dtool-s3 listed last: it serves, and the doctor names the fix (exit status 0: dtool works).
    dtool.env["PYTHONPATH"] = python_path(ours_first(tmp_path / "ours"), beside)
    assert broker_line(dtool, bucket) == (
        "WARN broker      s3:// is served by dtool_s3.storagebroker:S3StorageBroker "
        "(dtool-s3 0.14.1), not by dtool-s3-core: pip uninstall dtool-s3, or, if a package "
        "needs it, remove its registration (README, Install: dtool-s3 beside)"
    )
    # The README's fix: dtool-s3 stays importable, this package serves s3://.
    still_there = "import dtool_s3.storagebroker; print(dtool_s3.__version__)"
    fixed = subprocess.run(
        [sys.executable, "-c", f"{DROP_REGISTRATION}\n{still_there}"],
        env={**os.environ, **dtool.env},
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert fixed.stdout.split() == ["0.14.1"]
    assert broker_line(dtool, bucket).startswith(
        "OK   broker      s3:// is served by dtool_s3_core.broker:S3StorageBroker"
    )


def test_the_doctor_fails_when_no_broker_serves_s3(
    dtool: Dtool, bucket: str, tmp_path: Path
) -> None:
    # A damaged install: this package's record lists the dtool command group but no broker.
    damaged = ours_first(tmp_path / "ours", "[dtool.cli]\ns3 = dtool_s3_core.cli:s3\n")
    dtool.env["PYTHONPATH"] = python_path(damaged)
    result = dtool.run("s3", "doctor", f"s3://{bucket}", check=False)
    assert result.returncode == 1 and not result.stderr, result.stderr
    assert "FAIL broker      no broker is registered for s3://: reinstall dtool-s3-core " in (
        result.stdout
    )
