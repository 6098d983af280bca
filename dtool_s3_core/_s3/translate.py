"""Botocore's exceptions as the one-line errors of :mod:`..errors`, looked up in two tables.

An answer from S3 is looked up by its error code in :data:`_BY_CODE`; a code the table does not
know falls back on the HTTP status. A failure without an answer (no credentials, TLS, an
unreachable endpoint, a timeout) is looked up by its exception class in :data:`_BY_EXCEPTION`.
Each entry is the exception class and a :meth:`str.format` template; the fields are listed in
:func:`translate`.
"""

from __future__ import annotations

import re

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

from .. import errors
from .._format.uri import object_url

#: The exception to raise and its message template.
_Rule = tuple[type[errors.DtoolS3Error], str]

_ACCESS: _Rule = (
    errors.AccessDenied,
    "access denied to {where} ({code}): check DTOOL_S3_ACCESS_KEY_ID_{bucket} and "
    "DTOOL_S3_SECRET_ACCESS_KEY_{bucket} (or your AWS profile) and the bucket policy",
)
_MISSING: _Rule = (errors.ObjectNotFound, "{where} does not exist")
_CHANGED_IN_FLIGHT: _Rule = (
    errors.IntegrityError,
    "the server rejected the upload to {where} ({code}): the content changed while it was "
    "being sent; retry the copy",
)
# Still failing after botocore's last retry: the service is down or overloaded, the request
# itself was fine.
_TRANSIENT: _Rule = (
    errors.TransferFailed,
    "{where_ep} kept failing ({code}) on {where} after every retry: try again later "
    "(dtool cp --resume finishes a copy) or raise DTOOL_S3_MAX_ATTEMPTS",
)
_OTHER_ANSWER: _Rule = (errors.TransferFailed, "S3 error {code} on {where}: {detail}")

_BY_CODE: dict[str, _Rule] = {
    "NoSuchBucket": (
        errors.BucketNotFound,
        "bucket '{bucket}' does not exist at {where_ep}: create it or check the bucket name and "
        "DTOOL_S3_ENDPOINT_{bucket}",
    ),
    **dict.fromkeys(
        (
            "AccessDenied",
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "InvalidToken",
            "ExpiredToken",
            "AllAccessDisabled",
            "AccountProblem",
            "403",
        ),
        _ACCESS,
    ),
    **dict.fromkeys(("NoSuchKey", "NotFound", "404"), _MISSING),
    **dict.fromkeys(
        ("BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch"), _CHANGED_IN_FLIGHT
    ),
    # The codes botocore's retry handler retries.
    **dict.fromkeys(
        (
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
        ),
        _TRANSIENT,
    ),
}
# A code the table does not know (NoSuchUpload, RequestTimeTooSkewed, a server's own) still
# tells its kind by the status; any status from 500 up is transient, see _answer_rule.
_BY_STATUS: dict[int, _Rule] = {403: _ACCESS, 404: _MISSING}

# The first entry that matches wins: every class here is a BotoCoreError, so that catch-all
# comes last.
_BY_EXCEPTION: tuple[tuple[tuple[type[Exception], ...], _Rule], ...] = (
    (
        (NoCredentialsError, PartialCredentialsError),
        (
            errors.AccessDenied,
            "no credentials for bucket '{bucket}': set DTOOL_S3_ACCESS_KEY_ID_{bucket} and "
            "DTOOL_S3_SECRET_ACCESS_KEY_{bucket}, or configure an AWS profile",
        ),
    ),
    (
        (SSLError,),
        (
            errors.EndpointUnreachable,
            "TLS handshake with {where_ep} failed for bucket '{bucket}'{tls_reason}: check the "
            "certificate or use the right scheme (http/https) in DTOOL_S3_ENDPOINT_{bucket}",
        ),
    ),
    (
        (EndpointConnectionError, ConnectTimeoutError),
        (
            errors.EndpointUnreachable,
            "cannot reach {where_ep} for bucket '{bucket}': check DTOOL_S3_ENDPOINT_{bucket} "
            "and your network",
        ),
    ),
    (
        (ReadTimeoutError,),
        (
            errors.EndpointUnreachable,
            "{where_ep} stopped answering while working on {where}: try again later, or raise "
            "DTOOL_S3_READ_TIMEOUT_{bucket} (seconds) for a slow server",
        ),
    ),
    ((BotoCoreError,), (errors.TransferFailed, "S3 request on {where} failed: {detail}")),
)
_NOT_BOTOCORE: _Rule = (errors.TransferFailed, "S3 request on {where} failed: {kind}: {detail}")

_TLS_REASON = re.compile(
    r"certificate verify failed: ([^(\n]+)|(no appropriate subjectAltName[^\n]*|hostname [^\n]+)"
)


def translate(
    exc: Exception, bucket: str, key: str | None, endpoint: str | None
) -> errors.DtoolS3Error:
    """Turn a botocore exception into a one-line DtoolS3Error naming the bucket, key and fix.

    The templates' fields: ``where`` (the ``s3://`` URL of the request), ``where_ep`` (the
    endpoint, credentials removed), ``bucket``, ``code`` (the S3 error code), ``detail`` (the
    first line of botocore's message), ``kind`` (the exception's class name) and ``tls_reason``.

    :param exc: the exception botocore raised
    :param bucket: the bucket of the request
    :param key: the key of the request, if any
    :param endpoint: the endpoint URL, for connection errors
    :returns: the error to raise (``raise translate(...) from exc``)
    """
    error_class, template = _rule(exc)
    return error_class(
        template.format(
            where=object_url(bucket, key),
            where_ep=errors.redact_url(endpoint) or "the default AWS endpoint",
            bucket=bucket,
            code=errors.error_code(exc),
            detail=_first_line(exc),
            kind=type(exc).__name__,
            tls_reason=_tls_reason(exc),
        )
    )


def connection_broke(verb: str, where: str, attempts: int, cause: str) -> errors.TransferFailed:
    """A connection was made and then cut off, on every one of ``attempts`` attempts."""
    how = "once (" if attempts == 1 else f"{attempts} times ("
    broke = "broke" if attempts == 1 else "keeps breaking"
    return errors.TransferFailed(
        f"{verb} {where} failed {how}{cause}): the connection {broke}; check the network and "
        "the server, or raise DTOOL_S3_MAX_ATTEMPTS"
    )


def _rule(exc: Exception) -> _Rule:
    if isinstance(exc, ClientError):
        return _answer_rule(errors.error_code(exc), _http_status(exc))
    for classes, rule in _BY_EXCEPTION:
        if isinstance(exc, classes):
            return rule
    return _NOT_BOTOCORE


def _answer_rule(code: str, status: int) -> _Rule:
    rule = _BY_CODE.get(code) or _BY_STATUS.get(status)
    if rule:
        return rule
    return _TRANSIENT if status >= 500 else _OTHER_ANSWER


def _http_status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _tls_reason(exc: Exception) -> str:
    """Return `` (why)`` for a failed TLS handshake, or ``""`` when its message says nothing."""
    if not isinstance(exc, SSLError):
        return ""
    reason = _TLS_REASON.search(str(exc))
    text = (reason.group(1) or reason.group(2)) if reason else ""
    return f" ({text.strip().rstrip('.')})" if text else ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
