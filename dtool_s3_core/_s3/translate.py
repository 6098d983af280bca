"""Botocore's exceptions as the one-line errors of :mod:`..errors`, looked up in two tables.

An answer from S3 is looked up by its error code in :data:`_BY_CODE`; a code the table does not
know falls back on the HTTP status. A failure without an answer (no credentials, TLS, an
unreachable endpoint, a timeout) is looked up by its exception class in :data:`_BY_EXCEPTION`.
Each entry is the exception class and a :meth:`str.format` template; the fields are listed in
:func:`translate`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from xml.etree import ElementTree

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
from ..config import S3Config

#: The exception to raise and its message template.
_Rule = tuple[type[errors.DtoolS3Error], str]

_ACCESS: _Rule = (
    errors.AccessDenied,
    "access denied to {where} ({code}): check {credentials} (or your AWS profile) and the "
    "bucket policy{near_misses}",
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
    "(a copy resumes with --resume, or resume=True in Python) or raise {max_attempts}",
)
_OTHER_ANSWER: _Rule = (errors.TransferFailed, "S3 error {code} on {where}: {detail}")
# Refused for the time it was signed at, not for the credentials: telling the user to check the
# keys and the bucket policy would send them the wrong way.
_CLOCK_SKEW: _Rule = (
    errors.AccessDenied,
    "{where_ep} refused the request on {where} ({code}) because this machine's clock differs too "
    "much from the server's{times}: set this machine's clock (e.g. enable NTP)",
)
#: Codes that say the signing time is too far from the server's: S3, MinIO, Ceph RGW and
#: SeaweedFS answer RequestTimeTooSkewed; RequestExpired is the query-protocol services' word.
CLOCK_SKEW_CODES = frozenset({"RequestTimeTooSkewed", "RequestExpired"})
#: Codes that mean clock skew only when the message says "Signature expired" (STS, JSON APIs).
_SKEW_IF_EXPIRED = frozenset({"SignatureDoesNotMatch", "InvalidSignatureException"})

_BY_CODE: dict[str, _Rule] = {
    **dict.fromkeys(CLOCK_SKEW_CODES, _CLOCK_SKEW),
    "NoSuchBucket": (
        errors.BucketNotFound,
        "bucket '{bucket}' does not exist at {where_ep}: create it or check the bucket name and "
        "{endpoint}{near_misses}",
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
# A code the table does not know (NoSuchUpload, a server's own) still
# tells its kind by the status; any status from 500 up is transient, see _answer_rule.
_BY_STATUS: dict[int, _Rule] = {403: _ACCESS, 404: _MISSING}

# The first entry that matches wins: every class here is a BotoCoreError, so that catch-all
# comes last.
_BY_EXCEPTION: tuple[tuple[tuple[type[Exception], ...], _Rule], ...] = (
    (
        (NoCredentialsError, PartialCredentialsError),
        (
            errors.AccessDenied,
            "no credentials for bucket '{bucket}': set {credentials}, or configure an AWS "
            "profile{near_misses}",
        ),
    ),
    (
        (SSLError,),
        (
            errors.EndpointUnreachable,
            "TLS handshake with {where_ep} failed for bucket '{bucket}'{tls_reason}: check the "
            "certificate or use the right scheme (http/https) in {endpoint}{near_misses}",
        ),
    ),
    (
        (EndpointConnectionError, ConnectTimeoutError),
        (
            errors.EndpointUnreachable,
            "cannot reach {where_ep} for bucket '{bucket}': check {endpoint} and your "
            "network{near_misses}",
        ),
    ),
    (
        (ReadTimeoutError,),
        (
            errors.EndpointUnreachable,
            "{where_ep} stopped answering while working on {where}: try again later, or raise "
            "{read_timeout} (seconds) for a slow server",
        ),
    ),
    ((BotoCoreError,), (errors.TransferFailed, "S3 request on {where} failed: {detail}")),
)
_NOT_BOTOCORE: _Rule = (errors.TransferFailed, "S3 request on {where} failed: {kind}: {detail}")

_TLS_REASON = re.compile(
    r"certificate verify failed: ([^(\n]+)|(no appropriate subjectAltName[^\n]*|hostname [^\n]+)"
)


def translate(exc: Exception, config: S3Config, key: str | None) -> errors.DtoolS3Error:
    """Turn a botocore exception into a one-line DtoolS3Error naming the bucket, key and fix.

    The templates' fields: ``where`` (the ``s3://`` URL of the request), ``where_ep`` (the
    endpoint, credentials removed), ``bucket``, ``code`` (the S3 error code), ``detail`` (the
    first line of botocore's message), ``kind`` (the exception's class name), ``tls_reason`` and
    ``times`` (the server's time and this machine's, for clock skew); ``endpoint``,
    ``credentials``, ``read_timeout`` and ``max_attempts`` (those settings, named where they
    were set, see :meth:`S3Config.where_set`), and ``near_misses`` (the bucket's near misses,
    see :mod:`..config.nearmiss`, as ``; `` and a list, or nothing).

    :param exc: the exception botocore raised
    :param config: the settings of the request's bucket
    :param key: the key of the request, if any
    :returns: the error to raise (``raise translate(...) from exc``)
    """
    rule = _rule(exc)
    error_class, template = rule
    return error_class(
        template.format(
            where=object_url(config.bucket, key),
            where_ep=errors.redact_url(config.endpoint_url) or "the default AWS endpoint",
            bucket=config.bucket,
            endpoint=config.where_set("endpoint_url"),
            credentials=config.where_set("access_key_id", "secret_access_key"),
            read_timeout=config.where_set("read_timeout"),
            max_attempts=config.where_set("max_attempts"),
            near_misses=near_misses_text(config),
            code=errors.error_code(exc),
            detail=_first_line(exc),
            kind=type(exc).__name__,
            tls_reason=_tls_reason(exc),
            times=_skew_times(exc) if rule is _CLOCK_SKEW else "",
        )
    )


def near_misses_text(config: S3Config) -> str:
    """``; `` and the bucket's near misses, to end a hint that may come from one; or ``""``."""
    return "".join(f"; {hint}" for hint in config.near_misses)


def is_clock_skew(exc: BaseException | None) -> bool:
    """Return whether an S3 answer refused a request for its signing time (clock skew)."""
    return isinstance(exc, ClientError) and _rule(exc) is _CLOCK_SKEW


def skew_times_of(body: bytes | None) -> dict[str, str]:
    """Return the ``ServerTime`` and ``RequestTime`` of an S3 XML error body (those present).

    For answers that botocore did not parse (the awscrt engine): botocore puts them in
    ``exc.response["Error"]`` itself.
    """
    try:
        # Error documents are a few hundred bytes; a larger one is not worth parsing.
        root = ElementTree.fromstring((body or b"")[:65536])
    except ElementTree.ParseError:
        return {}
    found = {name: root.findtext(name) for name in ("ServerTime", "RequestTime")}
    return {name: text.strip() for name, text in found.items() if text and text.strip()}


def connection_broke(
    verb: str, where: str, attempts: int, cause: str, setting: str
) -> errors.TransferFailed:
    """A connection was made and then cut off, on every one of ``attempts`` attempts;
    ``setting`` names the attempts setting where it was set."""
    how = "once (" if attempts == 1 else f"{attempts} times ("
    broke = "broke" if attempts == 1 else "keeps breaking"
    return errors.TransferFailed(
        f"{verb} {where} failed {how}{cause}): the connection {broke}; check the network and "
        f"the server, or raise {setting}"
    )


def _rule(exc: Exception) -> _Rule:
    if isinstance(exc, ClientError):
        message = str(exc.response.get("Error", {}).get("Message") or "")
        return _answer_rule(errors.error_code(exc), _http_status(exc), message)
    for classes, rule in _BY_EXCEPTION:
        if isinstance(exc, classes):
            return rule
    return _NOT_BOTOCORE


def _answer_rule(code: str, status: int, message: str = "") -> _Rule:
    if code in _SKEW_IF_EXPIRED and "signature expired" in message.lower():
        return _CLOCK_SKEW
    rule = _BY_CODE.get(code) or _BY_STATUS.get(status)
    if rule:
        return rule
    return _TRANSIENT if status >= 500 else _OTHER_ANSWER


def _http_status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _skew_times(exc: Exception) -> str:
    """Return `` (server time X, this machine's Y: Z behind)`` from the answer, or ``""``.

    The answer's ``RequestTime`` is the time the request was signed at, i.e. this machine's
    clock; without it, the clock is read now. Without a ``ServerTime`` there is nothing to say.
    """
    error = getattr(exc, "response", {}).get("Error", {})
    server_text = str(error.get("ServerTime") or "")
    if not server_text:
        return ""
    request_text = str(error.get("RequestTime") or "")
    server = _parse_time(server_text)
    local = _parse_time(request_text) if request_text else datetime.now(UTC)
    shown_local = _show_time(local, request_text)
    times = f" (server time {_show_time(server, server_text)}, this machine's {shown_local}"
    if server is None or local is None:
        return times + ")"
    offset = local - server
    how = "ahead" if offset > timedelta(0) else "behind"
    return times + f": {_show_offset(abs(offset))} {how})"


def _parse_time(text: str) -> datetime | None:
    """Read an ISO 8601 time (``ServerTime``, ``20261207T183000Z``) or an HTTP date."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _show_time(moment: datetime | None, text: str) -> str:
    if moment is not None:
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    # The server's own words, kept to one short line.
    return repr("".join(c for c in text if c.isprintable())[:40])


def _show_offset(offset: timedelta) -> str:
    seconds = int(offset.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{hours} h"] if hours else []
    parts += [f"{minutes} min"] if minutes or hours else []
    return " ".join([*parts, f"{seconds} s"])


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
