"""What applies to a bucket and whether it works: the facts behind ``dtool s3 doctor``.

:func:`settings_report` lists each resolved setting with where it came from, secrets masked;
:func:`run_checks` tries the bucket step by step (endpoint, TLS, credentials, bucket, listing,
optionally a write, ACLs for public publishing, the engine that carries item bodies), each check
one line that says OK or the fix.
A check that cannot run because an earlier one failed is skipped, so one fault is one failure.
"""

from __future__ import annotations

import hashlib
import os
import socket
import ssl
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from .. import errors
from .._format.keys import normalise_prefix
from .._format.uri import object_url
from ..config import Provenance, S3Config, explain_config
from . import transfer
from .client import S3Client, session_for
from .flow import memory_budget
from .translate import is_clock_skew, near_misses_text

_NOT_FOUND = frozenset({"404", "NotFound", "NoSuchBucket"})
_SECRETS = frozenset({"secret_access_key", "session_token"})
_CHAIN = frozenset({"endpoint_url", "access_key_id", "secret_access_key", "profile", "region"})
_REJECTED = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
        "ExpiredToken",
        "TokenRefreshRequired",
    }
)


@dataclass(frozen=True)
class Shown:
    """One setting as doctor shows it: name, printable (masked) value, source."""

    name: str
    value: str
    source: str


@dataclass(frozen=True)
class Check:
    """One check: ``status`` is OK, WARN, FAIL or SKIP; ``text`` says what was found or the fix."""

    status: str
    name: str
    text: str

    @property
    def failed(self) -> bool:
        return self.status == "FAIL"


def mask(value: str) -> str:
    """Show an access key id by its ends only (it names an account's key)."""
    return value[:4] + "..." + value[-2:] if len(value) > 8 else "****"


def settings_report(bucket: str, config_path: str | None = None) -> tuple[S3Config, list[Shown]]:
    """Return the bucket's resolved configuration and its settings as doctor shows them.

    :raises ConfigurationError: if the settings cannot be resolved (that line is the diagnosis)
    """
    config, explained = explain_config(bucket, config_path)
    session = session_for(config)
    shown = [_show(p, config, session) for p in explained]
    return config, shown


def _show(setting: Provenance, config: S3Config, session: Any) -> Shown:
    value, source = setting.value, setting.source
    if setting.field == "endpoint_url":
        value = errors.redact_url(S3Client(config).endpoint)
    if source == "default" and setting.field in _CHAIN:
        source = _chain_source(setting.field, session)
        if setting.field == "region":
            value = session.region_name or "us-east-1"
        elif setting.field == "profile":
            value = session.profile_name
        elif setting.field in ("access_key_id", "secret_access_key"):
            credentials = session.get_credentials()
            value = None if credentials is None else getattr(credentials, _CRED_ATTR[setting.field])
    if setting.field in _SECRETS:
        text = "(not set)" if not value else "******** (set, hidden)"
    elif setting.field == "access_key_id":
        text = "(not set)" if not value else mask(str(value))
    elif value is None or value == "":
        text = "(not set)"
    else:
        text = str(value)
    return Shown(setting.key, text, source)


_CRED_ATTR = {"access_key_id": "access_key", "secret_access_key": "secret_key"}


def _chain_source(field: str, session: Any) -> str:
    profile = session.profile_name
    if field == "endpoint_url":
        for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
            if os.environ.get(name):
                return f"AWS chain: environment {name}"
        return "AWS chain: botocore's endpoint for the region"
    if field == "region":
        for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
            if os.environ.get(name):
                return f"AWS chain: environment {name}"
        return f"AWS chain: profile '{profile}'" if session.region_name else "botocore default"
    if field == "profile":
        return "AWS chain: environment AWS_PROFILE" if os.environ.get("AWS_PROFILE") else "default"
    credentials = session.get_credentials()
    if credentials is None:
        return "AWS chain: none found"
    return f"AWS chain: {credentials.method} (profile '{profile}')"


def run_checks(config: S3Config, write_test: bool = False) -> list[Check]:
    """Try the bucket step by step; see the module docstring."""
    client = S3Client(config)
    bucket = config.bucket
    checks: list[Check] = []
    endpoint = client.endpoint
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        # Configured endpoints are checked when resolved; botocore's own chain is not.
        port = 0
    shown = errors.redact_url(endpoint)
    skip_all = _skipper(checks)
    try:
        with socket.create_connection((host, port), timeout=config.connect_timeout) as sock:
            checks.append(Check("OK", "endpoint", f"{host}:{port} accepts connections"))
            checks.append(_tls(sock, parts.scheme, host, config))
    except OSError as exc:
        checks.append(
            Check(
                "FAIL",
                "endpoint",
                f"cannot connect to {host}:{port} ({exc.strerror or exc}): check "
                f"{config.where_set('endpoint_url')} and your network{near_misses_text(config)}",
            )
        )
        return skip_all("the endpoint is unreachable", "tls", "credentials")
    if checks[-1].failed:
        return skip_all("TLS failed", "credentials")
    prefix = normalise_prefix(config.dataset_prefix)
    failure = _failure(lambda: client.call("list_objects_v2", Prefix=prefix, MaxKeys=1))
    code = _code_of(failure)
    if failure is not None and is_clock_skew(failure.__cause__):
        # The server never looked at the keys: neither "accepted" nor a ListBucket grant is true.
        checks.append(Check("FAIL", "credentials", str(failure)))
        return skip_all("the server refused this machine's clock", "bucket")
    if code in _REJECTED or code == "NoCredentials":
        fix = (
            f"set {config.where_set('access_key_id', 'secret_access_key')}, or "
            f"configure an AWS profile{near_misses_text(config)}"
        )
        why = "no credentials found" if code == "NoCredentials" else f"the server said {code}"
        checks.append(Check("FAIL", "credentials", f"{why}: {fix}"))
        return skip_all("the credentials were not accepted", "bucket")
    checks.append(Check("OK", "credentials", f"accepted by {shown}"))
    missing = code == "NoSuchBucket" or (
        code is not None and _code(lambda: client.call("head_bucket")) in _NOT_FOUND
    )
    if missing:
        checks.append(
            Check(
                "FAIL",
                "bucket",
                f"bucket '{bucket}' does not exist at {shown}: create it, or check the "
                f"bucket name and {config.where_set('endpoint_url')}{near_misses_text(config)}",
            )
        )
        return skip_all("the bucket does not exist", "listing")
    checks.append(Check("OK", "bucket", f"'{bucket}' exists"))
    where = object_url(bucket, prefix)
    if code is None:
        checks.append(Check("OK", "listing", f"{where} can be listed"))
    else:
        checks.append(
            Check(
                "FAIL",
                "listing",
                f"listing {where} refused ({code}): grant s3:ListBucket on the bucket, "
                "or use credentials that have it",
            )
        )
    checks.extend(_write_and_acl(client, config, prefix, write_test))
    wrote = write_test and not any(c.name == "write" and c.failed for c in checks)
    checks.append(_engine(client, prefix, write_test, wrote))
    return checks


def _skipper(checks: list[Check]) -> Callable[..., list[Check]]:
    order = ["tls", "credentials", "bucket", "listing", "write", "acl", "engine"]

    def skip_all(reason: str, *first: str) -> list[Check]:
        start = order.index(first[0]) if first else len(order)
        done = {c.name for c in checks}
        for name in order[start:]:
            if name not in done:
                checks.append(Check("SKIP", name, f"not checked: {reason}"))
        return checks

    return skip_all


def _tls(sock: socket.socket, scheme: str, host: str, config: S3Config) -> Check:
    if scheme != "https":
        return Check("OK", "tls", "plain HTTP, no TLS (fine for a local server only)")
    if config.verify is False:
        return Check("OK", "tls", f"certificate of {host} not checked (DTOOL_S3_VERIFY is false)")
    bundle = config.verify if isinstance(config.verify, str) else os.environ.get("AWS_CA_BUNDLE")
    in_directory = bool(bundle) and os.path.isdir(bundle or "")
    context = ssl.create_default_context(
        cafile=None if in_directory else bundle or None, capath=bundle if in_directory else None
    )
    try:
        with context.wrap_socket(sock, server_hostname=host) as tls:
            version = tls.version()
    except (ssl.SSLError, OSError) as exc:
        reason = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or exc
        return Check(
            "FAIL",
            "tls",
            f"TLS handshake with {host} failed ({reason}): check the certificate (AWS_CA_BUNDLE "
            f"for a private CA) or the scheme in {config.where_set('endpoint_url')}",
        )
    return Check("OK", "tls", f"{version}, certificate valid for {host}")


def _code(request: Callable[[], Any]) -> str | None:
    """Run one request; return None on success, else the S3 error code (or NoCredentials)."""
    return _code_of(_failure(request))


def _failure(request: Callable[[], Any]) -> errors.DtoolS3Error | None:
    """Run one request; return None on success, else the error it raised."""
    try:
        request()
    except errors.DtoolS3Error as exc:
        return exc
    return None


def _code_of(failure: errors.DtoolS3Error | None) -> str | None:
    """The S3 error code of a failed request (or NoCredentials), None if it succeeded."""
    if failure is None:
        return None
    cause = failure.__cause__
    if isinstance(cause, ClientError):
        return errors.error_code(cause)
    if isinstance(cause, BotoCoreError) and "credentials" in type(cause).__name__.lower():
        return "NoCredentials"
    return type(failure).__name__


def _write_and_acl(
    client: S3Client, config: S3Config, prefix: str, write_test: bool
) -> list[Check]:
    bucket = config.bucket
    where = object_url(bucket, prefix)
    checks: list[Check] = []
    expiry = config.publish_expiry
    if not write_test:
        checks.append(Check("SKIP", "write", f"not tried under {where}: add --write-test"))
        if expiry is not None:
            checks.append(_presigned(expiry))
            return checks
        code = _code(lambda: client.call("get_bucket_acl"))
        if code is None:
            checks.append(
                Check(
                    "OK", "acl", "bucket ACLs are readable (--write-test tries a public-read ACL)"
                )
            )
        else:
            checks.append(_acl_failure(bucket, f"reading the bucket ACL was refused ({code})"))
        return checks
    key = f"{prefix}dtool-s3-doctor-{uuid.uuid4().hex}"
    code = _code(lambda: client.put_bytes(key, b"dtool s3 doctor write test\n"))
    if code is not None:
        checks.append(
            Check(
                "FAIL",
                "write",
                f"writing {object_url(bucket, key)} refused ({code}): grant s3:PutObject and "
                f"s3:DeleteObject under {where}",
            )
        )
        checks.append(Check("SKIP", "acl", "not checked: the write test failed"))
        return checks
    try:
        if expiry is not None:
            acl = _presigned(expiry)
        else:
            acl_code = _code(lambda: client.call("put_object_acl", key, ACL="public-read"))
            if acl_code is not None:
                acl = _acl_failure(bucket, f"a public-read ACL was refused ({acl_code})")
            elif not client.anonymous_readable(key):
                acl = _acl_failure(bucket, "the ACL was accepted but anonymous reads still fail")
            else:
                acl = Check("OK", "acl", "public-read ACLs work (an anonymous read succeeded)")
    finally:
        deleted = _code(lambda: client.call("delete_object", key))
    if deleted is None:
        checks.append(Check("OK", "write", f"wrote and deleted one object under {where}"))
    else:
        checks.append(
            Check(
                "FAIL",
                "write",
                f"wrote {object_url(bucket, key)} but deleting it was refused ({deleted}): grant "
                f"s3:DeleteObject under {where}, and delete that object",
            )
        )
    checks.append(acl)
    return checks


def _engine(client: S3Client, prefix: str, write_test: bool, wrote: bool) -> Check:
    reason = client.why_not_engine
    if reason is not None:
        return Check("OK", "engine", f"item bodies go through botocore ({reason})")
    if write_test and not wrote:
        return Check("SKIP", "engine", "not tried: the write test failed")
    if not write_test:
        return Check("OK", "engine", "item bodies go through awscrt (--write-test tries it)")
    where = object_url(client.bucket, prefix)
    key = f"{prefix}dtool-s3-doctor-{uuid.uuid4().hex}"
    data = b"dtool s3 doctor engine test\n"
    try:
        # One small file both ways: the path every small item takes.
        with tempfile.TemporaryDirectory() as scratch:
            source = Path(scratch) / "sent"
            source.write_bytes(data)
            with source.open("rb") as stream:
                budget = memory_budget(client.config)
                transfer.upload_stream(client, key, stream, lambda _: {}, budget)
            transfer.download(
                client, key, Path(scratch) / "received", hashlib.md5(data).hexdigest(), len(data)
            )
    except errors.DtoolS3Error as exc:
        return Check(
            "FAIL",
            "engine",
            f"awscrt could not write and read back one object under {where} ({exc}): set "
            f"{client.config.where_set('engine')} to botocore",
        )
    finally:
        _code(lambda: client.call("delete_object", key))
    return Check("OK", "engine", f"item bodies go through awscrt: wrote and read back {where}")


def _presigned(expiry: int) -> Check:
    return Check("OK", "acl", f"publishing uses presigned URLs ({expiry} s): no ACLs needed")


def _acl_failure(bucket: str, what: str) -> Check:
    return Check(
        "FAIL",
        "acl",
        f"{what}: 'dtool publish' cannot make datasets public in '{bucket}'; publish with "
        "presigned URLs by setting DTOOL_S3_PUBLISH_EXPIRY=<seconds>",
    )
