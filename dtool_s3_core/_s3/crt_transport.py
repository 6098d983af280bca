"""The fast engine for item bodies: awscrt's native S3 client behind :class:`CrtEngine`.

botocore spends about 3 ms of Python per request; awscrt signs, sends, retries and pools
connections in C (about 0.5 ms per request) and, unlike boto3's CRT transfer manager, sends the
headers we give it, so every upload keeps its ``Content-MD5`` and ``x-amz-meta-*``. It carries
item bodies that are in memory or small (PutObject from memory, UploadPart, GetObject of items
up to one part, see :func:`.transport.bodies`); listings, HEAD, multipart control, presigning and
large streamed bodies stay with botocore in :mod:`.client`.

:meth:`CrtEngine.send` is this engine's half of the one choke point: it logs each request (keys
only, never credentials), leaves retries to awscrt's standard strategy (exponential backoff with
full jitter, throttling and 5xx included, ``DTOOL_S3_MAX_ATTEMPTS`` attempts) and translates
every failure through :func:`.translate.translate`, so users read the same lines as with botocore.
awscrt has no read timeout of its own and shows none of a single request's bytes before the
request ends, so ``send`` cannot tell a slow link from a dead one: a request not finished within
``DTOOL_S3_READ_TIMEOUT`` seconds is cancelled and raises :class:`SlowLink`, for the caller to
send it through botocore, which sees every byte (:class:`.transport.CrtBodies`).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any
from urllib.parse import quote, urlencode, urlsplit
from xml.etree import ElementTree

from botocore.exceptions import ClientError, EndpointConnectionError, SSLError

from .. import errors
from .._format.uri import object_url
from ..config import S3Config
from .cancel import POLL_SECONDS, Cancel, Cancelled
from .translate import connection_broke, skew_times_of, translate

logger = logging.getLogger(__name__)

#: awscrt calls this with (chunk, offset) for each piece of a response body.
BodySink = Callable[[memoryview, int], None]

# Enough connections for 10-50 ms round trips; awscrt sizes its pool from this target.
_THROUGHPUT_GBPS = 10.0
_VALID_HOST_LABEL = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_bootstrap_lock = threading.Lock()


#: How long an engine leaves its bodies to botocore after a request it could not finish in
#: time, in read timeouts: long enough not to pay a timeout per request on a slow link, short
#: enough that a passing hiccup does not slow a long-lived worker for good.
SLOW_FOR = 10


class SlowLink(Exception):
    """A request not finished within the read timeout was cancelled; send it another way."""


def unsupported_reason(config: S3Config, endpoint_url: str, credentials: Any) -> str | None:
    """Return why the fast engine cannot serve this bucket, or None if it can."""
    if config.engine != "crt":
        return f"DTOOL_S3_ENGINE is {config.engine}"
    if credentials is None:
        return "no credentials (anonymous access is left to botocore)"
    if not endpoint_url.startswith(("http://", "https://")):
        return "the endpoint is not an http(s) URL"
    if endpoint_url.startswith("https://") and os.environ.get("AWS_CA_BUNDLE"):
        return "a custom CA bundle (AWS_CA_BUNDLE) is configured"
    if endpoint_url.startswith("https://") and config.verify is not True:
        return "TLS verification is off or uses a CA bundle (DTOOL_S3_VERIFY)"
    if _addressing(config, endpoint_url) == "virtual" and not _VALID_HOST_LABEL.match(
        config.bucket
    ):
        return "the bucket name cannot be a host name (virtual addressing)"
    try:
        import awscrt.s3  # noqa: F401
    except ImportError:
        return "awscrt is not installed"
    return None


def _addressing(config: S3Config, endpoint_url: str) -> str:
    if config.addressing_style != "auto":
        return config.addressing_style
    # botocore's "auto": virtual host for AWS when the name allows it, path style elsewhere.
    host = urlsplit(endpoint_url).hostname or ""
    return "virtual" if host.endswith("amazonaws.com") else "path"


class CrtEngine:
    """Item-body requests for one bucket through one native awscrt S3 client."""

    def __init__(self, config: S3Config, endpoint_url: str, region: str, credentials: Any) -> None:
        from awscrt import auth, s3
        from awscrt import io as crt_io

        self.config = config
        self.bucket = config.bucket
        self._endpoint = endpoint_url
        self._slow_until = 0.0
        parts = urlsplit(endpoint_url)
        netloc = parts.netloc.rpartition("@")[2]
        if _addressing(config, endpoint_url) == "virtual":
            self._host, self._prefix = f"{config.bucket}.{netloc}", ""
        else:
            self._host, self._prefix = netloc, "/" + quote(config.bucket, safe="")
        self._prefix = parts.path.rstrip("/") + self._prefix

        def frozen() -> Any:
            creds = credentials.get_frozen_credentials()
            return auth.AwsCredentials(creds.access_key, creds.secret_key, creds.token)

        provider = auth.AwsCredentialsProvider.new_delegate(frozen)
        with _bootstrap_lock:
            bootstrap = crt_io.ClientBootstrap.get_or_create_static_default()
        self._client = s3.S3Client(
            bootstrap=bootstrap,
            region=region,
            tls_mode=(
                s3.S3RequestTlsMode.ENABLED
                if parts.scheme == "https"
                else s3.S3RequestTlsMode.DISABLED
            ),
            signing_config=s3.create_default_s3_signing_config(
                region=region, credential_provider=provider
            ),
            throughput_target_gbps=_THROUGHPUT_GBPS,
            retry_config=(
                s3.S3RetryConfig(max_retries=config.max_attempts - 1)
                if config.max_attempts > 1
                # max_retries=0 would mean awscrt's default (5), not none.
                else s3.S3RetryConfig(retry_mode=s3.S3RetryMode.NONE)
            ),
            connect_timeout_ms=int(config.connect_timeout * 1000),
        )

    def __repr__(self) -> str:
        return f"CrtEngine(bucket={self.bucket!r}, endpoint={errors.redact_url(self._endpoint)!r})"

    @property
    def slow(self) -> bool:
        """Whether a request lately ran past the read timeout: bodies go through botocore."""
        return time.monotonic() < self._slow_until

    def send(
        self,
        operation: str,
        method: str,
        key: str,
        *,
        headers: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
        body: bytes | None = None,
        on_body: BodySink | None = None,
        cancel: Cancel | None = None,
    ) -> dict[str, str]:
        """Run one S3 request and return its response headers (lower-case names).

        :param operation: S3 operation name for logs and errors, e.g. ``"PutObject"``
        :param body: the request body (awscrt keeps it in memory for its retries)
        :param on_body: receives the response body as (chunk, offset); a retried request
                        starts again at offset 0
        :param cancel: cancels the request once raised (:class:`~.cancel.Cancelled`)
        :raises DtoolS3Error: translated like botocore's errors
        :raises SlowLink: if the request did not end within the read timeout (cancelled)
        """
        try:
            return self._send_once(operation, method, key, headers, query, body, on_body, cancel)
        except SlowLink:
            if not self.slow:
                logger.warning(
                    "S3 %s s3://%s/%s took more than %s s with awscrt; bodies of this bucket go "
                    "through botocore for the next %s s",
                    operation,
                    self.bucket,
                    key,
                    self.config.read_timeout,
                    SLOW_FOR * self.config.read_timeout,
                )
            self._slow_until = time.monotonic() + SLOW_FOR * self.config.read_timeout
            raise

    def _send_once(
        self,
        operation: str,
        method: str,
        key: str,
        headers: dict[str, str] | None,
        query: dict[str, str] | None,
        body: bytes | None,
        on_body: BodySink | None,
        cancel: Cancel | None,
    ) -> dict[str, str]:
        from awscrt.exceptions import AwsCrtError
        from awscrt.http import HttpHeaders, HttpRequest
        from awscrt.s3 import S3RequestType

        path = self._prefix + "/" + quote(key, safe="/~")
        if query:
            path += "?" + urlencode(query, quote_via=quote)
        header_list = [("Host", self._host), *(headers or {}).items()]
        stream = None
        if body is not None:
            stream = io.BytesIO(body)
            header_list.append(("Content-Length", str(len(body))))
        request = HttpRequest(method, path, HttpHeaders(header_list), stream)
        response: dict[str, str] = {}
        failure: list[BaseException] = []
        moved = [time.monotonic()]

        def on_headers(status_code: int, headers: list[tuple[str, str]], **_: Any) -> None:
            moved[0] = time.monotonic()
            response.update((name.lower(), value) for name, value in headers)

        def on_progress(progress: int, **_: Any) -> None:
            moved[0] = time.monotonic()

        def body_sink(chunk: memoryview, offset: int, **_: Any) -> None:
            moved[0] = time.monotonic()
            # An exception escaping into awscrt would only cancel the request: keep it to raise.
            try:
                if on_body is not None:
                    on_body(chunk, offset)
            except BaseException as exc:
                failure.append(exc)
                raise

        logger.debug("S3 %s s3://%s/%s (crt)", operation, self.bucket, key)
        s3_request = self._client.make_request(
            type=S3RequestType.DEFAULT,
            request=request,
            operation_name=operation,
            on_headers=on_headers,
            on_body=body_sink if on_body is not None else None,
            on_progress=on_progress,
        )
        try:
            self._wait(s3_request, moved, cancel)
        except AwsCrtError as exc:
            if failure:
                raise failure[0] from None
            raise self._translate(exc, operation, key) from exc
        if failure:
            raise failure[0]
        return response

    def _wait(self, s3_request: Any, moved: list[float], cancel: Cancel | None) -> None:
        """Wait for the request to finish; cancel it once nothing has shown for the read timeout,
        once ``cancel`` is raised, or when this thread is interrupted."""
        future = s3_request.finished_future
        limit = self.config.read_timeout
        while True:
            idle = time.monotonic() - moved[0]
            if idle >= limit:
                s3_request.cancel()
                # Its callbacks must be over before a retry writes to the same file; the
                # cancelled request's own error says nothing more.
                with contextlib.suppress(Exception):
                    future.result(timeout=limit)
                raise SlowLink
            if cancel is not None and cancel.is_set():
                self._abandon(s3_request)
                raise Cancelled("the request was interrupted")
            try:
                future.result(timeout=min(limit - idle, POLL_SECONDS))
                return
            except FutureTimeout:
                continue
            except KeyboardInterrupt:
                self._abandon(s3_request)
                raise

    def _abandon(self, s3_request: Any) -> None:
        s3_request.cancel()
        # Its callbacks write into the caller's file: they must be over before it is closed.
        with contextlib.suppress(Exception):
            s3_request.finished_future.result(timeout=self.config.read_timeout)

    def _translate(self, exc: Any, operation: str, key: str) -> errors.DtoolS3Error:
        status = getattr(exc, "status_code", None)
        if status:
            body = getattr(exc, "body", None)
            code, message = _error_of(body, int(status))
            # As botocore would give them: a clock-skew answer names the server's time and ours.
            client_error = ClientError(
                {
                    "Error": {"Code": code, "Message": message, **skew_times_of(body)},
                    "ResponseMetadata": {"HTTPStatusCode": int(status)},
                },
                operation,
            )
            return translate(client_error, self.config, key)
        name = str(getattr(exc, "name", ""))
        if "REQUEST_TIME_TOO_SKEWED" in name:
            # awscrt reads this answer itself (and has retried it) and keeps no body: the line
            # is the one botocore's answer gives, without the two times.
            skewed = ClientError(
                {
                    "Error": {"Code": "RequestTimeTooSkewed", "Message": name},
                    "ResponseMetadata": {"HTTPStatusCode": 403},
                },
                operation,
            )
            return translate(skewed, self.config, key)
        if any(part in name for part in ("CLOSED", "RESET", "BROKEN_PIPE")):
            # Connected, then cut off on every attempt: not an unreachable endpoint.
            verb = "reading" if operation == "GetObject" else "sending"
            where = object_url(self.bucket, key)
            return connection_broke(
                verb, where, self.config.max_attempts, name, self.config.where_set("max_attempts")
            )
        cause: Exception = exc
        if "TLS" in name:
            cause = SSLError(endpoint_url=self._endpoint, error=getattr(exc, "message", name))
        elif any(part in name for part in ("SOCKET", "DNS", "CONNECT", "TIMEOUT", "HOST")):
            cause = EndpointConnectionError(endpoint_url=self._endpoint)
        return translate(cause, self.config, key)


def _error_of(body: bytes | None, status: int) -> tuple[str, str]:
    """Return (code, message) of an S3 XML error body; the status when there is none."""
    try:
        # Error documents are a few hundred bytes; a larger one is not worth parsing.
        root = ElementTree.fromstring((body or b"")[:65536])
    except ElementTree.ParseError:
        return str(status), ""
    lines = (root.findtext("Message") or "").strip().splitlines()
    return root.findtext("Code") or str(status), lines[0] if lines else ""
