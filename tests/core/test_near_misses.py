"""Configuration that silently does not apply: near misses named by the doctor and in errors.

dtool-s3 reads ``<KEY>_<bucket>`` with the bucket name exactly as written; a key for
``raw_data`` (what a shell can export for ``raw-data``), a global credential, a misspelled key
or bucket leave the bucket on the AWS defaults. Errors of such a bucket then name the near miss.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from dtool_s3_core.config import resolve_config
from tests.conftest import Dtool
from tests.support.servers import S3Server, free_port


@pytest.fixture
def s3(s3_servers: Callable[[str], S3Server]) -> S3Server:
    return s3_servers("moto")


def errors_of(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith("Error: ")]


def unconfigured(dtool: Dtool, s3: S3Server) -> None:
    """No setting for the bucket under test: the AWS chain, pointed at a closed local port."""
    dtool.env.update(
        {
            "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{free_port()}",
            "AWS_ACCESS_KEY_ID": s3.access_key,
            "AWS_SECRET_ACCESS_KEY": s3.secret_key,
            "DTOOL_S3_MAX_ATTEMPTS": "1",
        }
    )


def test_a_key_for_the_underscored_bucket_name_is_named_with_the_way_that_works(
    dtool: Dtool, s3: S3Server, bucket: str
) -> None:
    hyphenated = f"raw-data-{bucket[-6:]}"
    underscored = hyphenated.replace("-", "_")
    unconfigured(dtool, s3)
    dtool.env[f"DTOOL_S3_ENDPOINT_{underscored}"] = s3.endpoint_url
    [line] = errors_of(dtool.run("ls", f"s3://{hyphenated}", check=False))
    assert line.startswith("Error: cannot reach "), line
    assert line.endswith(
        f"check DTOOL_S3_ENDPOINT_{hyphenated} and your network; "
        f"DTOOL_S3_ENDPOINT_{underscored} in the environment is for bucket '{underscored}', not "
        f"'{hyphenated}' (bucket names in keys are exact): set DTOOL_S3_ENDPOINT_{hyphenated}; a "
        f"shell that cannot export that name can run env 'DTOOL_S3_ENDPOINT_{hyphenated}=...' "
        "dtool ..., or put it in dtool.json"
    ), line
    # The way the hint gives works from a shell.
    script = (
        f"env 'DTOOL_S3_ENDPOINT_{hyphenated}={s3.endpoint_url}' "
        f"'DTOOL_S3_ACCESS_KEY_ID_{hyphenated}={s3.access_key}' "
        f"'DTOOL_S3_SECRET_ACCESS_KEY_{hyphenated}={s3.secret_key}' dtool ls s3://{hyphenated}"
    )
    s3.create_bucket(hyphenated)
    shell = subprocess.run(
        ["bash", "-c", script],
        env=dtool.environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert shell.returncode == 0 and shell.stderr == "", shell.stderr


def test_the_doctor_lists_the_near_misses_of_a_bucket_without_settings(
    dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    typo = bucket[:-1]
    unconfigured(dtool, s3)
    dtool.env["DTOOL_S3_ACCESS_KEY_ID"] = "global-key"
    config = tmp_path / "home" / ".config" / "dtool" / "dtool.json"
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps({f"DTOOL_S3_ENDPIONT_{typo}": s3.endpoint_url}))
    result = dtool.run("s3", "doctor", f"s3://{typo}", check=False)
    out = result.stdout
    assert result.returncode == 1
    assert "Near misses" in out, out
    assert (
        "DTOOL_S3_ACCESS_KEY_ID in the environment names no bucket and is ignored: dtool-s3's "
        "keys are per bucket, DTOOL_S3_ACCESS_KEY_ID_<bucket>"
    ) in out
    assert (
        f"DTOOL_S3_ENDPIONT_{typo} in {config} is no setting: did you mean "
        f"DTOOL_S3_ENDPOINT_{typo}?"
    ) in out
    assert (
        f"did you mean s3://{bucket}? (DTOOL_S3_ENDPOINT_{bucket} in the environment is set)" in out
    )
    assert "global-key" not in out + result.stderr


def test_a_configured_bucket_hears_only_of_its_misspelled_keys(
    monkeypatch: pytest.MonkeyPatch, s3: S3Server, bucket: str
) -> None:
    for name, value in {
        f"DTOOL_S3_ENDPOINT_{bucket}": s3.endpoint_url,
        f"DTOOL_S3_ENDPOINT_{bucket}x": s3.endpoint_url,
        f"DTOOL_S3_READ_TIMOUT_{bucket}": "5",
    }.items():
        monkeypatch.setenv(name, value)
    config = resolve_config(bucket)
    assert config.near_misses == (
        f"DTOOL_S3_READ_TIMOUT_{bucket} in the environment is no setting: did you mean "
        f"DTOOL_S3_READ_TIMEOUT_{bucket}?",
    )


@pytest.mark.parametrize("path", ["/", ""])
def test_an_endpoint_with_a_slash_alone_is_fine(
    monkeypatch: pytest.MonkeyPatch, s3: S3Server, bucket: str, path: str
) -> None:
    monkeypatch.setenv(f"DTOOL_S3_ENDPOINT_{bucket}", s3.endpoint_url + path)
    assert resolve_config(bucket).endpoint_url == s3.endpoint_url + path


def test_an_endpoint_with_a_path_is_one_line(dtool: Dtool, s3: S3Server, bucket: str) -> None:
    dtool.env[f"DTOOL_S3_ENDPOINT_{bucket}"] = f"{s3.endpoint_url}/{bucket}"
    [line] = errors_of(dtool.run("ls", f"s3://{bucket}", check=False))
    assert line == (
        f"Error: the endpoint URL for bucket '{bucket}' has a path ('/{bucket}'), which an S3 "
        "endpoint takes none of (the bucket goes in the s3:// URI) "
        f"('{s3.endpoint_url}/{bucket}', from DTOOL_S3_ENDPOINT_{bucket} in the environment): "
        "correct it there, e.g. https://s3.example.org or http://127.0.0.1:9000"
    )
