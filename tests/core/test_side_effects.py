"""Importing the package changes nothing global; queued-upload failures surface at a barrier.

Library users keep their excepthook, dtoolcore's disk broker and their exit handlers; only the
dtool command line (which loads the ``dtool s3`` group) gets one-line errors, the disk-broker
manifest cache and a barrier at the end of each command.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import ROOT, VENV_BIN, Dtool, bucket_env
from tests.support.proxy import S3Proxy
from tests.support.servers import S3Server

# The third-party stack is imported first: what boto3 and urllib3 do at import is theirs.
PROBE = """
import atexit, logging, sys, warnings
import boto3, botocore.session, dtoolcore, urllib3
from dtoolcore.storagebroker import DiskStorageBroker
before = (sys.excepthook, DiskStorageBroker.get_item_abspath, atexit._ncallbacks(),
          list(logging.getLogger().handlers), list(warnings.filters))
import dtool_s3_core, dtool_s3_core.broker, dtool_s3_core.api, dtool_s3_core.snakemake
after = (sys.excepthook, DiskStorageBroker.get_item_abspath, atexit._ncallbacks(),
         list(logging.getLogger().handlers), list(warnings.filters))
names = ("excepthook", "DiskStorageBroker.get_item_abspath", "atexit", "logging", "warnings")
changed = [name for name, b, a in zip(names, before, after) if b != a]
sys.stdout.write(",".join(changed) or "nothing")
"""


def python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_importing_the_package_changes_nothing_global() -> None:
    result = python(PROBE)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "nothing"


def test_the_dtool_cli_gets_one_line_errors_and_the_disk_cache() -> None:
    code = (
        "import sys; from dtoolcore.storagebroker import DiskStorageBroker as D\n"
        "original = D.get_item_abspath\n"
        "import dtool_s3_core.cli\n"
        "print(sys.excepthook is not sys.__excepthook__, D.get_item_abspath is not original)\n"
    )
    result = python(code)
    assert result.stdout.split() == ["True", "True"], result.stderr


LIBRARY_SCRIPT = """
import atexit, sys
import dtoolcore
from pathlib import Path
atexit.register(lambda: sys.stderr.write("caller's own exit handler ran\\n"))
proto = dtoolcore.ProtoDataSet.from_uri(sys.argv[1])
sys.stdout.write("ready\\n"); sys.stdout.flush()
sys.stdin.readline()
item = Path(sys.argv[2]); item.write_bytes(b"x" * 1000)
proto.put_item(str(item), "a.bin")
"""


def test_a_library_users_failed_upload_is_reported_at_exit_and_their_handlers_run(
    dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    uri = dtool.create("library", f"s3://{bucket}")
    with S3Proxy(s3.endpoint_url) as proxy:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            **bucket_env(s3, bucket),
            f"DTOOL_S3_ENDPOINT_{bucket}": proxy.url,
            "DTOOL_S3_MAX_ATTEMPTS": "1",
        }
        script = tmp_path / "script.py"
        script.write_text(textwrap.dedent(LIBRARY_SCRIPT))
        with subprocess.Popen(
            [sys.executable, str(script), uri, str(tmp_path / "a.bin")],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as process:
            assert process.stdout is not None and process.stdout.readline() == "ready\n"
            proxy.fault_rate = 1.0
            _, stderr = process.communicate("go\n", timeout=120)
    errors = [line for line in stderr.splitlines() if line.startswith("Error: upload failed")]
    assert len(errors) == 1, stderr
    assert "caller's own exit handler ran" in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("fault", ["slowdown", "reset"])
def test_the_dtool_cli_fails_a_command_whose_queued_upload_failed(
    fault: str, dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    uri = dtool.create("cli", f"s3://{bucket}")
    item = tmp_path / "item.bin"
    item.write_bytes(b"y" * 1000)
    with S3Proxy(s3.endpoint_url, fault_kinds=(fault,)) as proxy:
        faulty = Dtool(VENV_BIN, dict(dtool.env))
        faulty.env[f"DTOOL_S3_ENDPOINT_{bucket}"] = proxy.url
        faulty.env["DTOOL_S3_MAX_ATTEMPTS"] = "1"
        # Reads succeed, the item's upload (the only PUT) fails: so the failure is the queued one.
        proxy.fault_methods = ("PUT",)
        proxy.fault_rate = 1.0
        result = faulty.run("add", "item", str(item), uri, "a.bin", check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert f"{uri}/data/" in lines[0], lines[0]
