"""Exceptions raised by dtool_s3_core, and the translation of botocore errors into them.

The tree::

    DtoolS3Error(Exception)
    ├── ConfigurationError(DtoolS3Error, ValueError)     bad or partial settings, malformed URIs
    ├── BucketNotFound(DtoolS3Error, FileNotFoundError)
    ├── ObjectNotFound(DtoolS3Error, FileNotFoundError)  a dataset, item or metadata key is missing
    ├── AccessDenied(DtoolS3Error, PermissionError)      wrong credentials or no permission
    ├── EndpointUnreachable(DtoolS3Error, ConnectionError)
    ├── IntegrityError(DtoolS3Error, ValueError)         content does not match its MD5
    ├── DatasetStateError(DtoolS3Error, RuntimeError)    e.g. writing to a frozen dataset
    ├── PublishError(DtoolS3Error, RuntimeError)         the server refuses public ACLs
    ├── LocalFileError(DtoolS3Error, OSError)            a full local disk, an unwritable directory
    └── TransferFailed(DtoolS3Error, OSError)            anything else S3 answered with

Each subclass also inherits the matching built-in so that dtoolcore's and the dtool CLI's generic
handling keeps working. Messages are one line that names the bucket/key and the fix; they never
contain credentials.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
    SSLError,
)


class DtoolS3Error(Exception):
    """Base class of every error raised by dtool_s3_core."""


class ConfigurationError(DtoolS3Error, ValueError):
    """Settings or a URI are malformed or incomplete."""


class BucketNotFound(DtoolS3Error, FileNotFoundError):
    """The bucket does not exist on the endpoint."""


class ObjectNotFound(DtoolS3Error, FileNotFoundError):
    """A key that should exist is missing."""


class AccessDenied(DtoolS3Error, PermissionError):
    """The server refused the credentials or the operation."""


class EndpointUnreachable(DtoolS3Error, ConnectionError):
    """No connection could be made to the endpoint."""


class IntegrityError(DtoolS3Error, ValueError):
    """Content does not match the checksum it was stored or listed with."""


class DatasetStateError(DtoolS3Error, RuntimeError):
    """The dataset is in the wrong state for the operation (frozen, proto, existing)."""


class PublishError(DtoolS3Error, RuntimeError):
    """A dataset could not be published."""


class LocalFileError(DtoolS3Error, OSError):
    """A local file could not be written (full disk, quota, file size limit, permissions)."""


class TransferFailed(DtoolS3Error, OSError):
    """S3 answered with an error that is none of the above."""


def connection_broke(verb: str, where: str, attempts: int, cause: str) -> TransferFailed:
    """A connection was made and then cut off, on every one of ``attempts`` attempts."""
    how = "once (" if attempts == 1 else f"{attempts} times ("
    broke = "broke" if attempts == 1 else "keeps breaking"
    return TransferFailed(
        f"{verb} {where} failed {how}{cause}): the connection {broke}; check the network and "
        "the server, or raise DTOOL_S3_MAX_ATTEMPTS"
    )


def redact_url(url: str | None) -> str | None:
    """Return ``url`` without user:password (an endpoint may carry them; messages must not)."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<an unparsable URL>"
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc="***@" + netloc))


def damaged(where: str, problem: str) -> DatasetStateError:
    """Return the error for a dataset object that exists but cannot be read (e.g. broken JSON).

    :param where: the ``s3://`` URL of the object
    :param problem: what is wrong with it, e.g. ``"is not valid JSON (...)"``
    """
    return DatasetStateError(
        f"{where} {problem}: the dataset is damaged; restore that object from a copy of the "
        "dataset, or delete the dataset"
    )


_ACCESS_CODES = frozenset(
    {
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
        "ExpiredToken",
        "AllAccessDisabled",
        "AccountProblem",
        "403",
    }
)
_MISSING_KEY_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
# What botocore's retry handler retries: still failing after the last attempt means the service
# is down or overloaded, not that the request was wrong.
_TRANSIENT_CODES = frozenset(
    {
        "InternalError",
        "ServiceUnavailable",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "500",
        "502",
        "503",
        "504",
    }
)

_ACCESS_HINT = (
    "check DTOOL_S3_ACCESS_KEY_ID_{bucket} and DTOOL_S3_SECRET_ACCESS_KEY_{bucket} "
    "(or your AWS profile) and the bucket policy"
)


def error_code(exc: ClientError) -> str:
    """Return the S3 error code of a ClientError (or the HTTP status as a string)."""
    error: Mapping[str, str] = exc.response.get("Error", {})
    code = error.get("Code")
    if code:
        return str(code)
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return str(status) if status else "Unknown"


def http_status(exc: ClientError) -> int:
    """Return the HTTP status of a ClientError, 0 if unknown."""
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def translate(exc: Exception, bucket: str, key: str | None, endpoint: str | None) -> DtoolS3Error:
    """Turn a botocore exception into a one-line DtoolS3Error naming the bucket, key and fix.

    :param exc: the exception botocore raised
    :param bucket: the bucket of the request
    :param key: the key of the request, if any
    :param endpoint: the endpoint URL, for connection errors
    :returns: the error to raise (``raise translate(...) from exc``)
    """
    where = f"s3://{bucket}/{key}" if key else f"s3://{bucket}"
    where_ep = redact_url(endpoint) or "the default AWS endpoint"
    if isinstance(exc, ClientError):
        code = error_code(exc)
        if code == "NoSuchBucket":
            return BucketNotFound(
                f"bucket '{bucket}' does not exist at {where_ep}: create it or check the bucket "
                f"name and DTOOL_S3_ENDPOINT_{bucket}"
            )
        if code in _ACCESS_CODES or http_status(exc) == 403:
            return AccessDenied(
                f"access denied to {where} ({code}): " + _ACCESS_HINT.format(bucket=bucket)
            )
        if code in _MISSING_KEY_CODES or http_status(exc) == 404:
            return ObjectNotFound(f"{where} does not exist")
        if code in {"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch"}:
            return IntegrityError(
                f"the server rejected the upload to {where} ({code}): the content changed while "
                "it was being sent; retry the copy"
            )
        if code in _TRANSIENT_CODES or http_status(exc) >= 500:
            return TransferFailed(
                f"{where_ep} kept failing ({code}) on {where} after every retry: try again "
                f"later (dtool cp --resume finishes a copy) or raise DTOOL_S3_MAX_ATTEMPTS"
            )
        return TransferFailed(f"S3 error {code} on {where}: {_first_line(exc)}")
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return AccessDenied(
            f"no credentials for bucket '{bucket}': set DTOOL_S3_ACCESS_KEY_ID_{bucket} and "
            f"DTOOL_S3_SECRET_ACCESS_KEY_{bucket}, or configure an AWS profile"
        )
    if isinstance(exc, SSLError):
        reason = _TLS_REASON.search(str(exc))
        text = (reason.group(1) or reason.group(2)) if reason else ""
        why = f" ({text.strip().rstrip('.')})" if text else ""
        return EndpointUnreachable(
            f"TLS handshake with {where_ep} failed for bucket '{bucket}'{why}: check the "
            "certificate or use the right scheme (http/https) in DTOOL_S3_ENDPOINT_" + bucket
        )
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError):
        return EndpointUnreachable(
            f"cannot reach {where_ep} for bucket '{bucket}': check DTOOL_S3_ENDPOINT_{bucket} "
            "and your network"
        )
    if isinstance(exc, ReadTimeoutError):
        return EndpointUnreachable(
            f"{where_ep} stopped answering while working on {where}: try again later, or raise "
            f"DTOOL_S3_READ_TIMEOUT_{bucket} (seconds) for a slow server"
        )
    if isinstance(exc, BotoCoreError):
        return TransferFailed(f"S3 request on {where} failed: {_first_line(exc)}")
    return TransferFailed(f"S3 request on {where} failed: {type(exc).__name__}: {_first_line(exc)}")


_TLS_REASON = re.compile(
    r"certificate verify failed: ([^(\n]+)|(no appropriate subjectAltName[^\n]*|hostname [^\n]+)"
)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
