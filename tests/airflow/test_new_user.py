"""What a new Airflow user meets (issue 20): the connection type, the URI form, TLS and region
per connection, and templated parameters, each through a real DAG run against loopback servers."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from dtool_s3_core import copy, create_dataset
from tests.airflow.conftest import ARCHIVE_CONN, CANARY, Endpoints
from tests.airflow.helpers import on, run_dag, task_states, write_files, xcom
from tests.core.test_tls import self_signed
from tests.support.servers import S3Server, moto_tls_server

RFC3986 = "shall not contain '_' according to RFC3986"


def output(capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> str:
    captured = capfd.readouterr()
    return captured.out + captured.err + caplog.text


def check(conn: str, bucket: str) -> Any:
    return run_dag("dtool_s3_conn_check", conn=conn, bucket=bucket)


def served(conn_id: str) -> None:
    """Look the connection up as the API server does for every task that asks for it (and as
    the Test button and ``airflow connections get`` do): the path where Airflow checks the
    scheme. ``dag.test()`` reads AIRFLOW_CONN_* in the task's process and skips it."""
    from airflow.models.connection import Connection

    Connection.get_connection_from_secrets(conn_id)


def test_the_documented_type_reads_the_uri_form_without_a_warning(
    endpoints: Endpoints,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = urlsplit(endpoints.archive.endpoint_url)
    uri = (
        f"dtools3://http://{endpoints.archive.access_key}:{quote(CANARY, safe='')}@"
        f"{server.hostname}:{server.port}/?region_name=eu-central-1"
    )
    monkeypatch.setenv("AIRFLOW_CONN_URI_S3", uri)

    dag_run = check("uri_s3", endpoints.archive_bucket)
    served("uri_s3")

    assert task_states(dag_run) == {"list": "success", "region": "success"}
    assert xcom(dag_run, "list") == []
    assert xcom(dag_run, "region") == "eu-central-1"
    text = output(capfd, caplog)
    assert RFC3986 not in text and CANARY not in text


def test_the_old_type_name_still_works_and_airflow_warns_about_it(
    endpoints: Endpoints,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    old = {
        "conn_type": "dtool_s3",
        "host": endpoints.archive.endpoint_url,
        "login": endpoints.archive.access_key,
        "password": CANARY,
        "extra": {"region": "eu-west-3"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_OLD_S3", json.dumps(old))

    dag_run = check("old_s3", endpoints.archive_bucket)
    served("old_s3")

    assert task_states(dag_run) == {"list": "success", "region": "success"}
    assert xcom(dag_run, "region") == "eu-west-3"
    # The warning the new type avoids (so its absence above means something).
    assert "Connection schemes (type: dtool_s3) " + RFC3986 in output(capfd, caplog)


def test_a_dtool_s3_uri_fails_in_one_line_saying_how_to_write_it(
    endpoints: Endpoints,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = urlsplit(endpoints.archive.endpoint_url)
    uri = f"dtool_s3://{endpoints.archive.access_key}:{CANARY}@{server.hostname}:{server.port}"
    monkeypatch.setenv("AIRFLOW_CONN_OLD_URI", uri)
    bucket = endpoints.archive_bucket

    dag_run = check("old_uri", bucket)

    assert task_states(dag_run)["list"] == "failed"
    text = output(capfd, caplog)
    expected = (
        f"listing s3://{bucket} (connection 'old_uri') failed: connection 'old_uri' is a URI "
        "Airflow cannot read (a URI scheme cannot contain '_', as in dtool_s3://), so all its "
        "fields were lost: write it as dtools3://KEY:SECRET@HOST:PORT "
        "(dtools3://http://KEY:SECRET@HOST:PORT for plain HTTP), or as JSON with "
        '"conn_type": "dtools3"'
    )
    assert any(line.rstrip().endswith(expected) for line in text.splitlines()), text
    assert CANARY not in text


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[S3Server, Path]]:
    """moto over HTTPS with a self-signed certificate for localhost, and that certificate."""
    cert, key = self_signed(tmp_path_factory.mktemp("tls"), "localhost")
    with moto_tls_server(cert, key) as server:
        yield server, cert


# botocore silences urllib3's warning for each unverified request; the test's "error" filter
# would turn it into a failure.
@pytest.mark.filterwarnings("ignore:Unverified HTTPS request")
@pytest.mark.parametrize("verify", ["false", "ca-bundle", None])
def test_verify_per_connection_against_a_tls_server(
    airflow_home: Path,
    tls_server: tuple[S3Server, Path],
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    verify: str | None,
) -> None:
    server, cert = tls_server
    bucket = f"tls-{uuid.uuid4().hex[:10]}"
    server.create_bucket(bucket)
    extra: dict[str, Any] = {}
    if verify is not None:
        extra["verify"] = {"false": False, "ca-bundle": str(cert)}[verify]
    fields = {
        "conn_type": "dtools3",
        "host": server.endpoint_url,
        "login": server.access_key,
        "password": CANARY,
        "extra": extra,
    }
    monkeypatch.setenv("AIRFLOW_CONN_TLS_S3", json.dumps(fields))
    monkeypatch.setenv("DTOOL_S3_MAX_ATTEMPTS", "1")

    dag_run = check("tls_s3", bucket)

    states = task_states(dag_run)
    if verify is not None:
        assert states["list"] == "success"
        assert xcom(dag_run, "list") == []
        unchecked = "connection 'tls_s3': TLS certificates are not verified (verify is false)"
        assert (unchecked in output(capfd, caplog)) == (verify == "false")
        return
    # Without either, the self-signed certificate is refused as before: one line.
    assert states["list"] == "failed"
    text = output(capfd, caplog)
    assert f"listing s3://{bucket} (connection 'tls_s3') failed: TLS handshake with" in text
    assert CANARY not in text


@pytest.fixture
def published(endpoints: Endpoints, tmp_path: Path) -> tuple[str, str]:
    """Two frozen datasets in the archive bucket, the newer one already copied offsite."""
    archive, offsite = endpoints.archive_bucket, endpoints.offsite_bucket
    with on(endpoints.archive, archive):
        older = create_dataset("older", f"s3://{archive}", files={})
        newer = create_dataset(
            "newer", f"s3://{archive}", source_dir=write_files(tmp_path, {"a.txt": b"a"})
        )
        with on(endpoints.offsite, offsite, dataset_prefix="offsite/"):
            copy(newer, f"s3://{offsite}")
    return older, newer


def templated(endpoints: Endpoints, frozen_uri: str, **params: str) -> Any:
    return run_dag(
        "dtool_s3_templated",
        conn=ARCHIVE_CONN,
        archive=endpoints.archive_bucket,
        offsite=endpoints.offsite_bucket,
        frozen_uri=frozen_uri,
        **params,
    )


def rendered_fields(dag_run: Any) -> str:
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(RenderedTaskInstanceFields).where(
                RenderedTaskInstanceFields.dag_id == dag_run.dag_id,
                RenderedTaskInstanceFields.run_id == dag_run.run_id,
            )
        )
        return json.dumps({row.task_id: row.rendered_fields for row in rows})


def test_expiry_limit_and_resume_are_templated(
    endpoints: Endpoints, published: tuple[str, str]
) -> None:
    _, newer = published

    dag_run = templated(endpoints, newer, limit="1", expiry="600", resume="true")

    assert task_states(dag_run) == {"list": "success", "publish": "success", "copy": "success"}
    assert [entry["uri"] for entry in xcom(dag_run, "list")] == [newer]
    assert "X-Amz-Expires=600" in xcom(dag_run, "publish")
    # resume=true returned the copy made before instead of refusing it.
    assert xcom(dag_run, "copy").startswith(f"s3://{endpoints.offsite_bucket}/")
    rendered = json.loads(rendered_fields(dag_run))
    assert rendered["list"]["limit"] == "1" and rendered["publish"]["expiry"] == "600"
    assert CANARY not in json.dumps(rendered)


def test_rendered_values_are_checked_in_one_line(
    endpoints: Endpoints,
    published: tuple[str, str],
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, newer = published
    archive = endpoints.archive_bucket

    bad = templated(endpoints, newer, limit="0", expiry="soon", resume="maybe")
    # Checked before the next run, which replaces this one (same logical date).
    assert set(task_states(bad).values()) == {"failed"}
    refused = templated(endpoints, newer, limit="", expiry="None", resume="false")

    states = task_states(refused)
    assert states["list"] == "failed" and states["publish"] == "success"
    assert states["copy"] == "failed"
    lines = output(capfd, caplog).splitlines()
    copying = (
        f"copying {newer} to s3://{endpoints.offsite_bucket} (connections 'archive_s3' -> "
        "'offsite_s3') failed: "
    )
    expected = [
        f"listing s3://{archive} (connection 'archive_s3') failed: limit must be a whole "
        "number of at least 1, got '0'",
        f"publishing {newer} (connection 'archive_s3') failed: expiry (seconds) must be a "
        "whole number from 1 to 604800, got 'soon'",
        f"{copying}resume must be true or false, got 'maybe'",
        f"listing s3://{archive} (connection 'archive_s3') failed: limit must be a whole "
        "number of at least 1, got ''",
        # "false" is False, not a non-empty (true) string.
        f"{copying}a dataset already exists at",
    ]
    for message in expected:
        assert any(message in line for line in lines), message
