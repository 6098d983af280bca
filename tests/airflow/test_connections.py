"""The Test button (test_connection) and connections of the amazon provider's ``aws`` type.

Real requests to loopback servers: moto for S3 and STS (AssumeRole), SeaweedFS where a wrong
secret must be refused (moto accepts any signature).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from dtool_s3_airflow.hooks import DtoolS3Hook

from tests.airflow.conftest import CANARY, Endpoints
from tests.airflow.helpers import write_files
from tests.support.servers import S3Server, free_port, seaweedfs_server

TOKEN = f"canary-token-{uuid.uuid4().hex}"


def define(monkeypatch: pytest.MonkeyPatch, conn_id: str, **fields: Any) -> DtoolS3Hook:
    """Define connection ``conn_id`` as Airflow reads it from the environment; return its hook."""
    fields.setdefault("conn_type", "dtools3")
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))
    return DtoolS3Hook(conn_id)


def dtool_s3(server: S3Server, secret: str = CANARY, **extra: Any) -> dict[str, Any]:
    return {
        "host": server.endpoint_url,
        "login": server.access_key,
        "password": secret,
        "extra": extra,
    }


def test_head_bucket_answers_in_words(
    endpoints: Endpoints, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = endpoints.archive_bucket
    hook = define(monkeypatch, "probe", **dtool_s3(endpoints.archive, test_bucket=bucket))

    assert hook.test_connection() == (
        True,
        f"Connection OK: bucket '{bucket}' is reachable at {endpoints.archive.endpoint_url} "
        "with its credentials (HeadBucket)",
    )


def test_list_buckets_without_a_test_bucket(
    endpoints: Endpoints, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok, message = define(monkeypatch, "probe", **dtool_s3(endpoints.archive)).test_connection()

    assert ok, message
    assert f"{endpoints.archive.endpoint_url} accepted the credentials and lists" in message
    assert "(ListBuckets)" in message and CANARY not in message


# Airflow 3.3's own API route still goes through the deprecated ProvidersManager.hooks.
@pytest.mark.filterwarnings("ignore:ProvidersManager.hooks is deprecated")
def test_the_test_button_finds_the_hook_by_connection_type(
    endpoints: Endpoints, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the API server's /connections/test does: a transient connection, then its test."""
    from airflow.models.connection import Connection

    conn = Connection(
        conn_id="transient_probe",
        conn_type="dtools3",
        host=endpoints.offsite.endpoint_url,
        login=endpoints.offsite.access_key,
        password=CANARY,
        extra=json.dumps({"test_bucket": endpoints.offsite_bucket}),
    )
    monkeypatch.setenv("AIRFLOW_CONN_TRANSIENT_PROBE", conn.get_uri())

    ok, message = conn.test_connection()

    assert ok, message
    assert message.startswith(f"Connection OK: bucket '{endpoints.offsite_bucket}' is reachable")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"test_bucket": "no-such-bucket"},
            "HeadBucket on bucket 'no-such-bucket' failed: {endpoint} has no bucket "
            "'no-such-bucket'. Check the Test bucket field",
        ),
        (
            {"publish_expiry": "soon"},
            "The connection cannot be used: connection 'probe': publish_expiry must be a whole "
            "number of seconds > 0, got 'soon'",
        ),
    ],
    ids=["missing-bucket", "bad-field"],
)
def test_failures_say_what_to_fix(
    endpoints: Endpoints, monkeypatch: pytest.MonkeyPatch, fields: dict[str, str], expected: str
) -> None:
    hook = define(monkeypatch, "probe", **dtool_s3(endpoints.archive, **fields))

    ok, message = hook.test_connection()

    assert not ok
    assert message.startswith(expected.format(endpoint=endpoints.archive.endpoint_url)), message
    assert CANARY not in message


def test_unreachable_endpoint(airflow_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DTOOL_S3_MAX_ATTEMPTS", "1")
    url = f"http://127.0.0.1:{free_port()}"
    hook = define(
        monkeypatch,
        "probe",
        host=url,
        login="key-id",
        password=CANARY,
        extra={"test_bucket": "b-1"},
    )

    assert hook.test_connection() == (
        False,
        f"HeadBucket on bucket 'b-1' failed: cannot reach {url}. Check the Endpoint URL "
        "(scheme http or https, host and port) and that the server is running and reachable "
        "from Airflow",
    )


@pytest.fixture(scope="module")
def seaweedfs() -> Iterator[S3Server]:
    with seaweedfs_server() as server:
        yield server


def test_a_wrong_secret_is_refused_without_showing_it(
    airflow_home: Path, seaweedfs: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = f"probe-{uuid.uuid4().hex[:8]}"
    seaweedfs.create_bucket(bucket)
    right = define(
        monkeypatch, "right", **dtool_s3(seaweedfs, seaweedfs.secret_key, test_bucket=bucket)
    )
    wrong = define(monkeypatch, "wrong", **dtool_s3(seaweedfs, CANARY, test_bucket=bucket))

    assert right.test_connection()[0]
    ok, message = wrong.test_connection()

    assert not ok
    assert message.startswith(
        f"HeadBucket on bucket '{bucket}' failed: {seaweedfs.endpoint_url} refused the request ("
    ), message
    assert "Check the access key id, the secret access key" in message
    assert CANARY not in message and seaweedfs.secret_key not in message


# -- aws connections ------------------------------------------------------------------------------


def aws(server: S3Server, **extra: Any) -> dict[str, Any]:
    return {"conn_type": "aws", "login": server.access_key, "password": CANARY, "extra": extra}


def test_an_aws_connection_is_read_fully(
    endpoints: Endpoints, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server, bucket = endpoints.archive, endpoints.archive_bucket
    hook = define(
        monkeypatch,
        "aws_archive",
        **aws(
            server,
            endpoint_url=server.endpoint_url,
            region_name="eu-west-1",
            aws_session_token=TOKEN,
            config_kwargs={"s3": {"addressing_style": "path"}},
            dataset_prefix="raw/",
        ),
    )

    got = hook.settings
    assert (got.endpoint_url, got.access_key_id, got.secret_access_key, got.session_token) == (
        server.endpoint_url,
        server.access_key,
        CANARY,
        TOKEN,
    )
    assert (got.region, got.addressing_style, got.dataset_prefix) == ("eu-west-1", "path", "raw/")
    assert hook.s3_config(f"s3://{bucket}").region == "eu-west-1"  # type: ignore[union-attr]
    uri = hook.create_dataset(
        "from-aws", f"s3://{bucket}", source_dir=str(write_files(tmp_path, {"a": b"a"}))
    )
    keys = server.client().list_objects_v2(Bucket=bucket, Prefix="raw/")["KeyCount"]
    assert uri.startswith(f"s3://{bucket}/") and keys > 0
    assert CANARY not in repr(got) and TOKEN not in repr(got)


def test_host_is_the_endpoint_of_last_resort(
    endpoints: Endpoints, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = endpoints.archive
    fields = aws(server, service_config={"s3": {"endpoint_url": server.endpoint_url}})
    assert define(monkeypatch, "a1", **fields, host="http://ignored:1").settings.endpoint_url == (
        server.endpoint_url
    )
    assert define(monkeypatch, "a2", **aws(server), host="http://h:9").settings.endpoint_url == (
        "http://h:9"
    )


def test_role_arn_is_assumed_through_sts(
    endpoints: Endpoints, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server, bucket = endpoints.archive, endpoints.archive_bucket
    role = "arn:aws:iam::123456789012:role/dtool-writer"
    hook = define(
        monkeypatch,
        "aws_role",
        **aws(
            server,
            endpoint_url=server.endpoint_url,
            region_name="eu-west-1",
            role_arn=role,
            assume_role_kwargs={"DurationSeconds": 900},
            service_config={"sts": {"endpoint_url": server.endpoint_url}},
        ),
    )

    got = hook.settings
    assert got.access_key_id != server.access_key and got.secret_access_key != CANARY
    assert got.session_token
    # The temporary credentials are the role's: STS itself says so.
    sts = boto3.session.Session().client(
        "sts",
        endpoint_url=server.endpoint_url,
        region_name="eu-west-1",
        aws_access_key_id=got.access_key_id,
        aws_secret_access_key=got.secret_access_key,
        aws_session_token=got.session_token,
    )
    identity = sts.get_caller_identity()["Arn"]
    assert identity.endswith(":assumed-role/dtool-writer/airflow-dtool-s3-aws_role"), identity
    uri = hook.create_dataset(
        "as-role", f"s3://{bucket}", files={"a": str(write_files(tmp_path, {"a": b"a"}) / "a")}
    )
    assert hook.find_frozen(f"s3://{bucket}", "as-role").uri == uri  # type: ignore[union-attr]


def test_an_unreachable_sts_is_named(endpoints: Endpoints, monkeypatch: pytest.MonkeyPatch) -> None:
    sts_url = f"http://127.0.0.1:{free_port()}"
    hook = define(
        monkeypatch,
        "aws_role",
        **aws(
            endpoints.archive,
            role_arn="arn:aws:iam::123456789012:role/r",
            service_config={"sts": {"endpoint_url": sts_url}},
        ),
    )

    ok, message = hook.test_connection()

    assert not ok
    assert message == (
        f"The connection cannot be used: aws connection 'aws_role': cannot reach {sts_url} to "
        "assume arn:aws:iam::123456789012:role/r: set extra.service_config.sts.endpoint_url to "
        "your STS endpoint"
    )


def test_a_dtool_s3_connection_builds_on_an_aws_one(
    endpoints: Endpoints, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = endpoints.offsite
    define(
        monkeypatch,
        "aws_default",
        **aws(
            server,
            endpoint_url=server.endpoint_url,
            region_name="eu-west-1",
            aws_session_token=TOKEN,
        ),
    )
    hook = define(
        monkeypatch,
        "layered",
        extra={
            "aws_conn_id": "aws_default",
            "dataset_prefix": "mirror/",
            "test_bucket": endpoints.offsite_bucket,
        },
    )

    got = hook.settings
    assert (got.conn_id, got.endpoint_url, got.region, got.dataset_prefix, got.session_token) == (
        "layered",
        server.endpoint_url,
        "eu-west-1",
        "mirror/",
        TOKEN,
    )
    assert hook.test_connection()[0]
