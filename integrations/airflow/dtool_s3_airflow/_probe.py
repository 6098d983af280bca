"""The connection test behind the Test button: one request, an answer in words, no secrets."""

from __future__ import annotations

from collections.abc import Callable

from dtool_s3_core import S3Config, check_bucket, list_buckets
from dtool_s3_core.errors import (
    AccessDenied,
    BucketNotFound,
    ConfigurationError,
    DtoolS3Error,
    EndpointUnreachable,
    error_code,
    redact_url,
)

from .connection import ConnectionSettings

#: ListBuckets needs a configuration, which is per bucket; this name only keys the lookup.
_ANY_BUCKET = "dtool-s3-connection-test"


def probe(
    settings: Callable[[], ConnectionSettings], bucket: str | None, *secrets: str | None
) -> tuple[bool, str]:
    """Test a connection: HeadBucket on ``bucket``, else ListBuckets.

    :param settings: returns the connection's settings (reading them may fail: an AssumeRole
                     refused, a malformed field; that is reported too)
    :param secrets: values that must not appear in the answer, whatever a server echoes
    """
    hidden = list(secrets)
    try:
        resolved = settings()
    except DtoolS3Error as exc:
        return False, _scrubbed(f"The connection cannot be used: {exc}", hidden)
    hidden += [resolved.secret_access_key, resolved.session_token]
    request = f"HeadBucket on bucket '{bucket}'" if bucket else "ListBuckets"
    where = "the endpoint"
    try:
        config = resolved.config(bucket or _ANY_BUCKET)
        where = _endpoint(config)
        if bucket:
            check_bucket(f"s3://{bucket}", config=config)
            answer = f"bucket '{bucket}' is reachable at {where} with its credentials (HeadBucket)"
        else:
            count = len(list_buckets(config))
            answer = (
                f"{where} accepted the credentials and lists {count} bucket(s) (ListBuckets); "
                "set the Test bucket field to check one bucket"
            )
    except DtoolS3Error as exc:
        return False, _scrubbed(_failure(exc, request, where, bucket), hidden)
    return True, _scrubbed(f"Connection OK: {answer}", hidden)


def _endpoint(config: S3Config) -> str:
    url = redact_url(config.endpoint_url)
    if url:
        return url
    return f"the AWS endpoint of region {config.region}" if config.region else "the AWS endpoint"


def _failure(exc: DtoolS3Error, request: str, where: str, bucket: str | None) -> str:
    if isinstance(exc, ConfigurationError):
        return f"The connection's settings are not usable: {exc}"
    if isinstance(exc, EndpointUnreachable):
        return (
            f"{request} failed: cannot reach {where}. Check the Endpoint URL (scheme http or "
            "https, host and port) and that the server is running and reachable from Airflow"
        )
    if isinstance(exc, BucketNotFound):
        return (
            f"{request} failed: {where} has no bucket '{bucket}'. Check the Test bucket field "
            "and that the Endpoint URL points at the service that holds it"
        )
    if isinstance(exc, AccessDenied):
        cause = exc.__cause__
        # No answer behind the refusal means there were no credentials to send.
        code = "no credentials"
        if cause is not None and getattr(cause, "response", None):
            code = error_code(cause)
        scope = f"read bucket '{bucket}'" if bucket else "list buckets (or set Test bucket)"
        return (
            f"{request} failed: {where} refused the request ({code}). Check the access key id, "
            f"the secret access key and the session token, if any, and that they may {scope}"
        )
    return f"{request} at {where} failed: {exc}"


def _scrubbed(message: str, secrets: list[str | None]) -> str:
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    return message
