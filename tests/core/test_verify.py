"""DTOOL_S3_VERIFY: per-bucket TLS verification (off, or a CA bundle), through the real CLI
against moto over HTTPS with a self-signed certificate."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dtool_s3_core.config import resolve_config
from dtool_s3_core.errors import ConfigurationError
from tests.conftest import VENV_BIN, Dtool
from tests.core.test_tls import self_signed
from tests.support.servers import S3Server, moto_tls_server


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[S3Server, Path]]:
    cert, key = self_signed(tmp_path_factory.mktemp("tls"), "localhost")
    with moto_tls_server(cert, key) as server:
        yield server, cert


@pytest.fixture
def bucket(tls_server: tuple[S3Server, Path]) -> str:
    name = f"tls-{uuid.uuid4().hex[:10]}"
    tls_server[0].create_bucket(name)
    return name


def dtool_for(server: S3Server, bucket: str, tmp_path: Path, verify: str) -> Dtool:
    return Dtool(
        VENV_BIN,
        {
            "HOME": str(tmp_path / "home"),
            f"DTOOL_S3_ENDPOINT_{bucket}": server.endpoint_url,
            f"DTOOL_S3_ACCESS_KEY_ID_{bucket}": server.access_key,
            f"DTOOL_S3_SECRET_ACCESS_KEY_{bucket}": server.secret_key,
            f"DTOOL_S3_VERIFY_{bucket}": verify,
            "DTOOL_S3_MAX_ATTEMPTS": "1",
        },
    )


@pytest.mark.parametrize("verify", ["false", "ca-bundle"])
def test_a_self_signed_endpoint_works_without_verification_or_with_its_ca(
    tls_server: tuple[S3Server, Path], bucket: str, tmp_path: Path, verify: str
) -> None:
    server, cert = tls_server
    dtool = dtool_for(server, bucket, tmp_path, str(cert) if verify == "ca-bundle" else verify)
    # The doctor lists the bucket and checks TLS on its own, following the same setting.
    report = dtool("s3", "doctor", f"s3://{bucket}")
    assert "listing" in report and "FAIL" not in report, report
    tls = next(line for line in report.splitlines() if line.split()[1:2] == ["tls"])
    if verify == "false":
        assert "certificate of localhost not checked (DTOOL_S3_VERIFY is false)" in tls
    else:
        assert "certificate valid for localhost" in tls


def test_the_default_still_refuses_a_self_signed_certificate(
    tls_server: tuple[S3Server, Path], bucket: str, tmp_path: Path
) -> None:
    server, _ = tls_server
    result = dtool_for(server, bucket, tmp_path, "true").run("ls", f"s3://{bucket}", check=False)
    assert result.returncode == 1
    assert "TLS handshake with" in result.stderr and "Traceback" not in result.stderr


def test_a_missing_ca_bundle_is_one_line_naming_its_setting(
    tls_server: tuple[S3Server, Path], bucket: str, tmp_path: Path
) -> None:
    server, _ = tls_server
    missing = str(tmp_path / "no-such-ca.pem")
    result = dtool_for(server, bucket, tmp_path, missing).run("ls", f"s3://{bucket}", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"Error: the TLS verify setting for bucket '{bucket}' must be true, false or the path "
        f"of a CA bundle, but '{missing}' is not a file or directory here (from "
        f"DTOOL_S3_VERIFY_{bucket} in the environment): correct it there"
    )


@pytest.mark.parametrize(
    ("value", "expected"), [("false", False), ("TRUE", True), (False, False), ("0", False)]
)
def test_boolean_words_from_the_config_file(tmp_path: Path, value: object, expected: bool) -> None:
    path = tmp_path / "dtool.json"
    path.write_text(json.dumps({"DTOOL_S3_VERIFY": value}))
    assert resolve_config("any-bucket", path).verify is expected


def test_a_value_of_another_type_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "dtool.json"
    path.write_text(json.dumps({"DTOOL_S3_VERIFY": 5}))
    with pytest.raises(ConfigurationError) as info:
        resolve_config("any-bucket", path)
    assert str(info.value) == (
        f"DTOOL_S3_VERIFY in {path} must be true, false or the path of a CA bundle, got 5"
    )
