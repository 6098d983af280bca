"""What a new user hits (issue 20), through the real dtool CLI on moto.

File modes of a download, one line for each bad input, and recovery hints that name the
command that was run.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from dtool_s3_core._s3 import transfer
from dtool_s3_core._s3.translate import translate
from dtool_s3_core.config import S3Config
from tests.conftest import SOURCE_FILES, Dtool, make_source_dataset
from tests.support.servers import S3Server


@pytest.fixture
def s3(s3_servers: Callable[[str], S3Server]) -> S3Server:
    """moto: nothing here depends on the server."""
    return s3_servers("moto")


def run_with_umask(dtool: Dtool, umask: int, *args: str) -> None:
    env = {**os.environ, **dtool.env}
    subprocess.run(
        [str(dtool.bin_dir / "dtool"), *args],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
        preexec_fn=lambda: os.umask(umask),
    )


def modes(directory: Path) -> set[int]:
    return {stat.S_IMODE(p.stat().st_mode) for p in directory.rglob("*") if p.is_file()}


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_s3_cp_to_disk_gives_files_the_mode_dtool_cp_gives(
    dtool: Dtool, bucket: str, tmp_path: Path, umask: int
) -> None:
    local = make_source_dataset(tmp_path / "local")
    uri = dtool("s3", "cp", "-q", str(local), f"s3://{bucket}").strip()
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    ours.mkdir()
    theirs.mkdir()
    run_with_umask(dtool, umask, "s3", "cp", "-q", uri, str(ours))
    run_with_umask(dtool, umask, "cp", uri, str(theirs))
    expected = 0o666 & ~umask
    (copy,) = ours.iterdir()
    assert modes(copy / "data") == {expected}
    assert modes(copy) == modes(theirs / local.name) == {expected}


def test_the_download_cache_stays_private(dtool: Dtool, bucket: str, tmp_path: Path) -> None:
    local = make_source_dataset(tmp_path / "local")
    uri = dtool("s3", "cp", "-q", str(local), f"s3://{bucket}").strip()
    run_with_umask(dtool, 0o022, "cp", uri, str(tmp_path))
    cached = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert cached and modes(tmp_path / "cache") == {0o600}


def test_the_umask_is_read_the_same_without_proc(monkeypatch: pytest.MonkeyPatch) -> None:
    from_proc = transfer.umask()
    monkeypatch.setattr(transfer, "_proc_umask", lambda: None)
    transfer._read_umask.cache_clear()
    try:
        assert transfer.umask() == from_proc
    finally:
        transfer._read_umask.cache_clear()


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The one ``Error:`` line of a failed command, which printed no traceback."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize("region", ["eu_west_1", "eu-west-1 ", "123"])
@pytest.mark.parametrize("command", [("ls",), ("s3", "doctor")])
def test_a_bad_region_is_one_line_naming_its_setting(
    dtool: Dtool, bucket: str, region: str, command: tuple[str, ...]
) -> None:
    dtool.env[f"DTOOL_S3_REGION_{bucket}"] = region
    line = one_line_error(dtool.run(*command, f"s3://{bucket}", check=False))
    assert line == (
        f"Error: the region for bucket '{bucket}' must be letters, digits and inner hyphens, "
        f"e.g. eu-west-1, got {region!r} (from DTOOL_S3_REGION_{bucket} in the environment): "
        "correct it there"
    )


def test_a_bad_default_region_names_aws_default_region(dtool: Dtool, bucket: str) -> None:
    dtool.env["AWS_DEFAULT_REGION"] = "eu west 1"
    line = one_line_error(dtool.run("ls", f"s3://{bucket}", check=False))
    assert "got 'eu west 1' (from AWS_DEFAULT_REGION in the environment)" in line


@pytest.mark.parametrize("region", ["garage", "default", "us-east-1", "eu-west-1"])
def test_any_region_botocore_accepts_is_accepted(dtool: Dtool, bucket: str, region: str) -> None:
    dtool.env[f"DTOOL_S3_REGION_{bucket}"] = region
    dtool("ls", f"s3://{bucket}")


@pytest.mark.parametrize("path", ["name", "projects/", "a/b"])
def test_listing_a_path_in_a_bucket_says_what_to_run(dtool: Dtool, bucket: str, path: str) -> None:
    dtool("create", "present", f"s3://{bucket}")
    line = one_line_error(dtool.run("ls", f"s3://{bucket}/{path}", check=False))
    assert line == (
        f"Error: s3://{bucket}/{path} is neither a dataset nor a base URI: list the datasets of "
        f"the bucket with 'dtool ls s3://{bucket}', or look at one with "
        f"'dtool summary s3://{bucket}/<uuid>'"
    )


def test_base_uris_with_and_without_a_slash_still_work(dtool: Dtool, bucket: str) -> None:
    out = dtool("create", "fine", f"s3://{bucket}/")
    uri = next(w for w in out.split() if w.startswith(f"s3://{bucket}/") and len(w) > 40)
    assert uri in dtool("ls", f"s3://{bucket}") and uri in dtool("ls", f"s3://{bucket}/")
    # A dataset URI still reaches the dataset, not the refusal of a path in a base URI.
    assert "Cannot list the items of a proto dataset" in dtool.run("ls", uri, check=False).stderr


@pytest.mark.parametrize("command", ["s3 cp", "cp", "create"])
def test_a_path_where_a_base_uri_belongs_says_how_to_set_a_prefix(
    dtool: Dtool, bucket: str, tmp_path: Path, command: str
) -> None:
    local = make_source_dataset(tmp_path / "local")
    args = ["create", "ds"] if command == "create" else [*command.split(), str(local)]
    line = one_line_error(dtool.run(*args, f"s3://{bucket}/projects/", check=False))
    assert line == (
        f"Error: s3://{bucket}/projects/ has a path after the bucket where a base URI is "
        f"expected: use s3://{bucket}, and to keep new datasets under projects/ set "
        f"DTOOL_S3_DATASET_PREFIX_{bucket}=projects/"
    )
    assert dtool("ls", f"s3://{bucket}") == ""


def test_a_dataset_uri_where_a_base_uri_belongs_is_refused(
    dtool: Dtool, bucket: str, tmp_path: Path
) -> None:
    local = make_source_dataset(tmp_path / "local")
    uri = dtool("s3", "cp", "-q", str(local), f"s3://{bucket}").strip()
    line = one_line_error(dtool.run("s3", "cp", str(local), uri, check=False))
    assert line == f"Error: {uri} is a dataset URI where a base URI is expected: use s3://{bucket}"


def test_an_existing_destination_names_the_dtool_s3_cp_command(
    dtool: Dtool, bucket: str, tmp_path: Path
) -> None:
    local = make_source_dataset(tmp_path / "local")
    first = dtool("s3", "cp", str(local), f"s3://{bucket}").splitlines()
    assert "skipped" not in first[0]
    line = one_line_error(dtool.run("s3", "cp", str(local), f"s3://{bucket}", check=False))
    assert line == (
        f"Error: a dataset already exists at {first[-1]} (a frozen copy): copy with "
        f"'dtool s3 cp --resume {local} s3://{bucket}' to finish or reuse it, or delete it first "
        f"with 'dtool s3 rm {first[-1]}'"
    )
    resumed = dtool("s3", "cp", "--resume", str(local), f"s3://{bucket}").splitlines()
    assert resumed[0].endswith(f"; {len(SOURCE_FILES)} skipped (already present)")


def test_a_server_that_keeps_failing_names_no_one_command() -> None:
    # Any command can meet it (ls, verify, a copy from dtool cp, dtool s3 cp or Python).
    answer = {"Error": {"Code": "SlowDown", "Message": "busy"}, "ResponseMetadata": {}}
    config = S3Config(bucket="bucket", endpoint_url="http://s3.example")
    error = translate(ClientError(answer, "GetObject"), config, "key")
    assert str(error) == (
        "http://s3.example kept failing (SlowDown) on s3://bucket/key after every retry: try "
        "again later (a copy resumes with --resume, or resume=True in Python) or raise "
        "DTOOL_S3_MAX_ATTEMPTS_bucket"
    )
