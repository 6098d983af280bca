"""The benchmark keeps running: a tiny pass of every scenario with every tool (no docs written)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ORACLE_BIN, ROOT


def quick_pass(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m bench --quick --no-output`` with ``args``; it must succeed."""
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--no-output", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.slow
def test_benchmark_quick_pass() -> None:
    if not (ORACLE_BIN / "dtool").exists():
        if os.environ.get("CI"):
            pytest.fail("the dtool-s3 0.14.1 oracle is missing: run scripts/bootstrap.sh")
        pytest.skip("the dtool-s3 0.14.1 oracle virtualenv is not installed")
    result = quick_pass("--latencies", "0")
    for tool in ("dtool-s3 0.14.1", "dtool-s3-core", "boto3 (raw)"):
        assert tool in result.stdout
    assert "load: 50 items: S3 -> local" in result.stdout


@pytest.mark.slow
def test_speed_suite_quick_pass() -> None:
    result = quick_pass("--suite", "speed")
    for tool in ("dtool cp (crt engine)", "dtool s3 cp (crt engine)", "s5cmd", "rclone"):
        assert tool in result.stdout
