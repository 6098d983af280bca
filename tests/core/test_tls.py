"""A TLS endpoint whose certificate names another host fails in one line, not in ten."""

from __future__ import annotations

import datetime
import http.server
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import VENV_BIN, Dtool


def self_signed(directory: Path, host: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def wrong_name_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """An HTTPS server on 127.0.0.1 whose (trusted) certificate is for example.invalid."""
    cert, key = self_signed(tmp_path, "example.invalid")
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], cert
    finally:
        server.shutdown()
        server.server_close()


def test_certificate_for_another_host_is_one_line(
    wrong_name_server: tuple[int, Path], tmp_path: Path
) -> None:
    port, cert = wrong_name_server
    bucket = "tls-bucket"
    dtool = Dtool(
        VENV_BIN,
        {
            "HOME": str(tmp_path / "home"),
            "AWS_CA_BUNDLE": str(cert),
            f"DTOOL_S3_ENDPOINT_{bucket}": f"https://127.0.0.1:{port}",
            f"DTOOL_S3_ACCESS_KEY_ID_{bucket}": "AKIDTLS",
            f"DTOOL_S3_SECRET_ACCESS_KEY_{bucket}": "tls-secret",
            "DTOOL_S3_MAX_ATTEMPTS": "1",
        },
    )
    result = dtool.run("ls", f"s3://{bucket}", check=False)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        f"Error: TLS handshake with https://127.0.0.1:{port} failed for bucket '{bucket}' ("
    )
    assert lines[0].endswith(
        "): check the certificate or use the right scheme (http/https) in "
        f"DTOOL_S3_ENDPOINT_{bucket} in the environment"
    )
