"""Servers at fault and endpoints typed wrong: one line, exit 1, no traceback, no password.

* A listing that never ends (truncated pages with the same continuation token, with none, or
  with a new one forever) stops at once or at the page limit, through ``dtool ls``,
  ``dtool s3 verify`` and the Python API (``tests/support/hostile.py`` plays the server).
* Clock skew (``RequestTimeTooSkewed``) is its own line, with the server's and this machine's
  time, in ``dtool ls``, in ``dtool s3 doctor`` (a failed credentials check, the rest skipped)
  and through the awscrt engine.
* A malformed endpoint URL (a port out of range or not a number, an unclosed IPv6 bracket) is a
  one-line ConfigurationError naming where it was set, in the CLI, the Python API, the Snakemake
  plugin (a real ``snakemake --verbose`` run) and an Airflow connection.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dtool_s3_core import create_dataset, list_datasets, override, resolve_config
from dtool_s3_core._s3 import client as client_module
from dtool_s3_core._s3 import transfer
from dtool_s3_core._s3.client import S3Client
from dtool_s3_core.errors import AccessDenied, ConfigurationError, TransferFailed, redact_url
from tests.conftest import VENV_BIN, Dtool, use_server
from tests.support.hostile import HostileS3
from tests.support.servers import S3Server

PASSWORD = "S3cretPass"
BUCKET = "hostile-bucket"
MALFORMED = {
    "port-out-of-range": f"http://user:{PASSWORD}@host:99999",
    "port-not-a-number": f"http://user:{PASSWORD}@host:abc",
    "unclosed-ipv6": "http://[::1",
}
PROBLEMS = {
    "port-out-of-range": "has a port that is not a number from 1 to 65535",
    "port-not-a-number": "has a port that is not a number from 1 to 65535",
    "unclosed-ipv6": "has an IPv6 address without its closing ']'",
}
SHOWN = {
    "port-out-of-range": "http://***@host:99999",
    "port-not-a-number": "http://***@host:abc",
    "unclosed-ipv6": "http://[::1",
}
FIX = "correct it there, e.g. https://s3.example.org or http://127.0.0.1:9000"


@pytest.fixture
def cli(tmp_path: Path) -> Dtool:
    """Our dtool CLI with an isolated HOME and cache, and no bucket configured yet."""
    return Dtool(
        VENV_BIN,
        {
            "HOME": str(tmp_path / "home"),
            "DTOOL_CACHE_DIRECTORY": str(tmp_path / "cache"),
            "DTOOL_S3_MAX_ATTEMPTS": "1",
        },
    )


def point_at(cli: Dtool, bucket: str, endpoint: str) -> None:
    cli.env.update(
        {
            f"DTOOL_S3_ENDPOINT_{bucket}": endpoint,
            f"DTOOL_S3_ACCESS_KEY_ID_{bucket}": "hostile-key",
            f"DTOOL_S3_SECRET_ACCESS_KEY_{bucket}": "hostile-secret-canary",
        }
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one ``Error:`` line of a failed command, after the checks every case shares."""
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output, output
    assert PASSWORD not in output and "hostile-secret-canary" not in output, output
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def with_password(endpoint: str) -> str:
    return endpoint.replace("http://", f"http://user:{PASSWORD}@", 1)


@pytest.fixture
def hostile(request: pytest.FixtureRequest) -> Iterator[HostileS3]:
    with HostileS3(request.param) as server:
        yield server


# -- listings that cannot end ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hostile", "what"),
    [
        (
            "same-token",
            "answered page 2 of the listing of s3://{b}/dtool- with a continuation token it "
            "had already given",
        ),
        (
            "no-token",
            "answered a truncated listing of s3://{b}/dtool- without a continuation token",
        ),
        (
            "foreign-key",
            "answered the listing of s3://{b}/dtool- with the key 'elsewhere/x', which is "
            "outside it",
        ),
    ],
    indirect=["hostile"],
    ids=["same-token", "no-token", "foreign-key"],
)
def test_an_endless_listing_is_one_line(cli: Dtool, hostile: HostileS3, what: str) -> None:
    endpoint = with_password(hostile.endpoint_url)
    point_at(cli, BUCKET, endpoint)
    started = time.monotonic()
    result = cli.run("ls", f"s3://{BUCKET}", check=False)
    assert time.monotonic() - started < 60
    assert one_error_line(result) == (
        f"Error: {redact_url(endpoint)} {what.format(b=BUCKET)}: the server is at fault; "
        "report it to its operator"
    )
    assert hostile.requests["ListObjectsV2"] <= 2


def test_s3_verify_of_an_endless_listing_is_one_line(
    cli: Dtool, moto: S3Server, tmp_path: Path
) -> None:
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    moto.create_bucket(bucket)
    source = tmp_path / "source"
    source.mkdir()
    (source / "a.txt").write_text("a\n")
    with use_server(moto, bucket, tmp_path):
        uri = create_dataset("looped", f"s3://{bucket}", source_dir=source)
    ds_uuid = uri.rsplit("/", 1)[1]
    with HostileS3("same-token", upstream=moto.endpoint_url) as hostile:
        cli.env.update(
            {
                f"DTOOL_S3_ENDPOINT_{bucket}": hostile.endpoint_url,
                f"DTOOL_S3_ACCESS_KEY_ID_{bucket}": moto.access_key,
                f"DTOOL_S3_SECRET_ACCESS_KEY_{bucket}": moto.secret_key,
            }
        )
        result = cli.run("s3", "verify", uri, check=False)
    line = one_error_line(result)
    assert line.startswith(
        f"Error: {hostile.endpoint_url} answered page 2 of the listing of s3://{bucket}/{ds_uuid}/"
    ), line
    assert line.endswith(
        "with a continuation token it had already given: the server is at fault; report it to "
        "its operator"
    ), line
    assert hostile.requests["relayed"] > 0 and hostile.requests["ListObjectsV2"] == 2


@pytest.mark.parametrize("hostile", ["fresh-token"], indirect=True)
def test_a_listing_stops_at_the_page_limit(
    hostile: HostileS3, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The real limit (20,000 pages) takes minutes to reach on loopback; the rule is the same.
    monkeypatch.setattr(client_module, "MAX_LISTING_PAGES", 5)
    settings = {"endpoint_url": hostile.endpoint_url, "max_attempts": 1}
    with (
        override(BUCKET, access_key_id="k", secret_access_key="s", **settings),
        pytest.raises(TransferFailed) as info,
    ):
        list(list_datasets(f"s3://{BUCKET}"))
    assert str(info.value) == (
        f"{hostile.endpoint_url} has not ended the listing of s3://{BUCKET}/dtool- after 5 pages "
        "and 5 keys (the limit is 5 pages or 10000000 keys): the server is at fault unless that "
        "prefix really holds so many objects; report it to its operator"
    )
    assert hostile.requests["ListObjectsV2"] == 5


# -- clock skew --------------------------------------------------------------------------------

SKEWED = re.compile(
    r"(?P<server>\S+) refused the request on s3://hostile-bucket\S* \(RequestTimeTooSkewed\) "
    r"because this machine's clock differs too much from the server's(?P<times> \(server time "
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, this machine's \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC: "
    r"(1 h 59 min 5\d|2 h 0 min [0-5]) s behind\))?: set this machine's clock "
    r"\(e\.g\. enable NTP\)"
)


@pytest.mark.parametrize("hostile", ["skewed"], indirect=True)
def test_clock_skew_is_its_own_line(cli: Dtool, hostile: HostileS3) -> None:
    endpoint = with_password(hostile.endpoint_url)
    point_at(cli, BUCKET, endpoint)
    line = one_error_line(cli.run("ls", f"s3://{BUCKET}", check=False))
    found = SKEWED.fullmatch(line.removeprefix("Error: "))
    assert found and found["times"], line
    assert found["server"] == redact_url(endpoint)
    assert "access denied" not in line and "bucket policy" not in line


@pytest.mark.parametrize("hostile", ["skewed"], indirect=True)
def test_doctor_blames_the_clock_not_the_credentials(cli: Dtool, hostile: HostileS3) -> None:
    point_at(cli, BUCKET, hostile.endpoint_url)
    result = cli.run("s3", "doctor", f"s3://{BUCKET}", check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in output, output
    checks = {
        line.split()[1]: line.split(None, 2)
        for line in result.stdout.splitlines()
        if line.strip().split(" ", 1)[0] in {"OK", "FAIL", "SKIP"}
    }
    assert checks["endpoint"][0] == "OK" and checks["tls"][0] == "OK", output
    status, _, text = checks["credentials"]
    found = SKEWED.fullmatch(text)
    assert status == "FAIL" and found and found["times"], output
    for name in ("bucket", "listing", "write", "acl", "engine"):
        assert checks[name][0] == "SKIP", output
    assert "ListBucket" not in output and "accepted by" not in output


@pytest.mark.parametrize("hostile", ["skewed"], indirect=True)
def test_clock_skew_through_the_crt_engine(hostile: HostileS3, tmp_path: Path) -> None:
    settings = {"endpoint_url": hostile.endpoint_url, "max_attempts": 1, "engine": "crt"}
    with override(BUCKET, access_key_id="k", secret_access_key="s", **settings):
        client = S3Client(resolve_config(BUCKET))
    if client.engine is None:
        pytest.skip(f"the awscrt engine is not available: {client.why_not_engine}")
    md5 = hashlib.md5(b"x").hexdigest()
    with pytest.raises(AccessDenied) as info:
        transfer.download(client, "some/key", tmp_path / "out", md5, 1)
    # awscrt keeps no body of this answer, so there are no times to show.
    found = SKEWED.fullmatch(str(info.value))
    assert found and found["server"] == hostile.endpoint_url, str(info.value)


# -- malformed endpoints -----------------------------------------------------------------------


def expected_line(case: str, source: str, bucket: str = BUCKET) -> str:
    return (
        f"the endpoint URL for bucket '{bucket}' {PROBLEMS[case]} ('{SHOWN[case]}', from "
        f"{source}): {FIX}"
    )


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_endpoint_is_one_line(cli: Dtool, case: str) -> None:
    point_at(cli, BUCKET, MALFORMED[case])
    expected = "Error: " + expected_line(case, f"DTOOL_S3_ENDPOINT_{BUCKET} in the environment")
    for args in (("ls", f"s3://{BUCKET}"), ("s3", "doctor", f"s3://{BUCKET}")):
        assert one_error_line(cli.run(*args, check=False)) == expected, args


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_endpoint_in_the_python_api(case: str, tmp_path: Path) -> None:
    config_file = tmp_path / "dtool.json"
    with override(BUCKET, endpoint_url=MALFORMED[case]), pytest.raises(ConfigurationError) as info:
        list(list_datasets(f"s3://{BUCKET}"))
    assert str(info.value) == expected_line(
        case, f"endpoint_url of dtool_s3_core.override() for bucket '{BUCKET}'"
    )
    assert info.value.__cause__ is None and info.value.__context__ is None
    # The same value from the dtool config file names that file and key.
    config_file.write_text(json.dumps({f"DTOOL_S3_ENDPOINT_{BUCKET}": MALFORMED[case]}))
    with pytest.raises(ConfigurationError) as info:
        resolve_config(BUCKET, config_file)
    assert str(info.value) == expected_line(case, f"DTOOL_S3_ENDPOINT_{BUCKET} in {config_file}")


def test_a_malformed_endpoint_of_the_aws_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    # botocore reads it itself, and refused it with the whole URL in its message.
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", MALFORMED["port-out-of-range"])
    with pytest.raises(ConfigurationError) as info:
        resolve_config(BUCKET)
    assert str(info.value) == expected_line(
        "port-out-of-range", "AWS_ENDPOINT_URL_S3 in the environment"
    )


def test_redact_url_never_raises_nor_shows_userinfo() -> None:
    for url in (
        *MALFORMED.values(),
        f"http://user:{PASSWORD}@[::1",
        f"http://user:{PASSWORD}@[zz::1]:9000",
        f"http://user:pa/ss{PASSWORD}@host:9000/path",
        f"http://user:pa@ss{PASSWORD}@host:9000",
        f"user:{PASSWORD}@host:9000",
        f"http://user:{PASSWORD}@",
    ):
        shown = redact_url(url)
        assert shown is not None and PASSWORD not in shown and "user" not in shown, shown
    assert redact_url(f"http://user:{PASSWORD}@host:99999") == "http://***@host:99999"
    assert redact_url("http://127.0.0.1:9000") == "http://127.0.0.1:9000"


SNAKEFILE = """
rule copy:
    input: storage.dtool("dtool://hostile-bucket/raw/a.txt")
    output: "a.txt"
    shell: "cp {input} {output}"
"""


# Not the unclosed IPv6 bracket: Snakemake reads "tag::value" in its settings, so it takes
# "http://[::1" for the value "1" of the tag "http://[" before the plugin sees it.
@pytest.mark.parametrize("case", ["port-out-of-range", "port-not-a-number"])
def test_a_malformed_endpoint_in_snakemake(case: str, tmp_path: Path) -> None:
    workdir = tmp_path / "wf"
    workdir.mkdir()
    (workdir / "Snakefile").write_text(SNAKEFILE)
    env = {
        "HOME": str(tmp_path / "home"),
        "PATH": f"{VENV_BIN}:/usr/bin:/bin",
        "SNAKEMAKE_STORAGE_DTOOL_ENDPOINT_URL": MALFORMED[case],
        "SNAKEMAKE_STORAGE_DTOOL_ACCESS_KEY": "key",
        "SNAKEMAKE_STORAGE_DTOOL_SECRET_KEY": "secret-canary",
    }
    result = subprocess.run(
        [str(VENV_BIN / "snakemake"), "-c1", "--verbose"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert PASSWORD not in output and "secret-canary" not in output, output
    expected = (
        f"the dtool storage plugin's endpoint URL {PROBLEMS[case]} ('{SHOWN[case]}', from "
        "--storage-dtool-endpoint-url or SNAKEMAKE_STORAGE_DTOOL_ENDPOINT_URL): correct it "
        "there, e.g. https://s3.example.org or http://127.0.0.1:9000"
    )
    assert expected in output, output


AIRFLOW_CHECK = """
import sys
from dtool_s3_core.errors import ConfigurationError
from dtool_s3_airflow.connection import endpoint

cases = [(host, None) for host in sys.argv[1:-1]] + [(sys.argv[-1], 99999)]
for host, port in cases:
    try:
        endpoint("c", host, port)
    except ConfigurationError as exc:
        print(exc)
"""


def test_a_malformed_endpoint_in_an_airflow_connection(tmp_path: Path) -> None:
    # In a process of its own: importing Airflow configures logging for the whole process.
    with_port_field = f"http://user:{PASSWORD}@host"
    result = subprocess.run(
        [str(VENV_BIN / "python"), "-c", AIRFLOW_CHECK, *MALFORMED.values(), with_port_field],
        env={"HOME": str(tmp_path / "home"), "PATH": f"{VENV_BIN}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if "No module named 'airflow'" in result.stderr:
        pytest.skip("Airflow is not installed")
    assert result.returncode == 0, result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    fix = "correct the connection's endpoint_url extra, or its host and port"
    expected = [
        f"connection 'c': the endpoint {PROBLEMS[case]} ('{SHOWN[case]}'): {fix}"
        for case in MALFORMED
    ]
    # The connection's port field (99999) makes a URL whose port is out of range.
    expected.append(
        f"connection 'c': the endpoint {PROBLEMS['port-out-of-range']} "
        f"('http://***@host:99999'): {fix}"
    )
    assert result.stdout.splitlines() == expected
