"""The one place that talks to S3: cached botocore clients, retries, logging, error translation.

boto3 (and awscrt) are imported when the first client is built, not when the package is: dtool
imports every storage broker to list them, and ``dtool --version`` should not pay for S3.

Every botocore request of the package goes through :meth:`S3Client.call` (or
:meth:`S3Client.list_objects`, which pages through it). Botocore's *standard* retry mode retries
throttling (503 SlowDown), 5xx answers, connection resets and timeouts with exponential backoff
and jitter, classified by error code; :func:`.retry.retrying` extends that to failures while a
response body is being read, which botocore cannot retry on its own.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
)

from .. import errors
from .._format.uri import object_url
from ..config import S3Config
from .cancel import Cancel
from .redact import protect_library_logs
from .retry import retrying
from .translate import connection_broke, near_misses_text, translate

if TYPE_CHECKING:
    from botocore.client import BaseClient

    from .crt_transport import CrtEngine

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: Bounds of one listing (see :meth:`S3Client.list_objects`): S3 answers 1000 keys a page, so a
#: full listing of 10 million keys (ten times a very large dataset, whose manifest alone would
#: be gigabytes) takes 10,000 pages; twice that many pages leaves room for servers that send
#: fuller pages less often. A listing that reaches either bound is stopped as endless.
MAX_LISTED_KEYS = 10_000_000
MAX_LISTING_PAGES = 20_000


@dataclass(frozen=True)
class ObjectInfo:
    """One entry of a listing."""

    key: str
    size: int
    last_modified: float
    etag: str


class _ClientCache:
    """Thread-safe cache of botocore clients and fast engines keyed by what shapes them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: dict[tuple[Any, ...], tuple[BaseClient, Any]] = {}
        # (engine, why there is none) per bucket and client settings.
        self._engines: dict[tuple[Any, ...], tuple[CrtEngine | None, str | None]] = {}

    def get(self, config: S3Config, unsigned: bool = False) -> BaseClient:
        return self._get(config, unsigned)[0]

    def _get(self, config: S3Config, unsigned: bool) -> tuple[BaseClient, Any]:
        key = (*config.client_key(), unsigned)
        with self._lock:
            entry = self._clients.get(key)
            if entry is None:
                entry = _build_client(config, unsigned)
                self._clients[key] = entry
            return entry

    def engine(self, config: S3Config) -> CrtEngine | None:
        """The fast engine for item bodies, or None where botocore has to carry them."""
        return self._engine(config)[0]

    def why_not_engine(self, config: S3Config) -> str | None:
        """Why botocore carries this bucket's item bodies, or None when the fast engine does."""
        return self._engine(config)[1]

    def _engine(self, config: S3Config) -> tuple[CrtEngine | None, str | None]:
        # An engine addresses one bucket (a botocore client serves any).
        key = (config.bucket, *config.client_key())
        with self._lock:
            if key in self._engines:
                return self._engines[key]
        client, session = self._get(config, False)
        built = _build_engine(config, client, session)
        with self._lock:
            return self._engines.setdefault(key, built)


def _build_engine(
    config: S3Config, client: BaseClient, session: Any
) -> tuple[CrtEngine | None, str | None]:
    from . import crt_transport as crt

    # The same endpoint, region and credential chain botocore resolved for this bucket.
    endpoint: str = client.meta.endpoint_url
    region: str = client.meta.region_name or "us-east-1"
    credentials = session.get_credentials()
    reason = crt.unsupported_reason(config, endpoint, credentials)
    if reason is not None:
        logger.debug("item transfers of s3://%s use botocore: %s", config.bucket, reason)
        return None, reason
    return crt.CrtEngine(config, endpoint, region, credentials), None


def _build_client(config: S3Config, unsigned: bool) -> tuple[BaseClient, Any]:
    from botocore import UNSIGNED
    from botocore.config import Config

    session = session_for(config)
    botocore_config = Config(
        signature_version=UNSIGNED if unsigned else "s3v4",
        s3={"addressing_style": config.addressing_style},
        # botocore's "max_attempts" counts retries only; DTOOL_S3_MAX_ATTEMPTS counts them all.
        retries={"mode": "standard", "total_max_attempts": config.max_attempts},
        max_pool_connections=max(10, 2 * config.max_concurrency),
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
        request_checksum_calculation=config.checksum_mode,
        response_checksum_validation=config.checksum_mode,
        tcp_keepalive=True,
    )
    client = session.client(
        "s3",
        endpoint_url=config.endpoint_url,
        config=botocore_config,
        # None leaves botocore's chain (AWS_CA_BUNDLE, ~/.aws/config ca_bundle) in charge.
        verify=None if config.verify is True else config.verify,
    )
    # Several S3 servers (SeaweedFS among them) insist on Content-MD5 for DeleteObjects, which
    # botocore no longer sends when checksums are only calculated "when required".
    client.meta.events.register("before-sign.s3.DeleteObjects", _add_content_md5)
    protect_library_logs(config.secret_access_key, config.session_token)
    return client, session


def session_for(config: S3Config) -> Any:
    """A boto3 session with this bucket's credentials, profile and region (see :func:`session`)."""
    return session(
        config.access_key_id,
        config.secret_access_key,
        config.session_token,
        config.profile,
        config.region,
    )


def session(
    access_key_id: str | None,
    secret_access_key: str | None,
    session_token: str | None,
    profile: str | None,
    region: str | None,
) -> Any:
    """A boto3 session: the one place that builds one.

    It resolves the AWS chain locally (environment, profiles) and sends no request.
    """
    import boto3

    return boto3.session.Session(
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        aws_session_token=session_token,
        profile_name=profile,
        region_name=region,
    )


def _add_content_md5(request: Any, **_: Any) -> None:
    body = request.body or b""
    if isinstance(body, str):
        body = body.encode("utf-8")
    if isinstance(body, bytes) and "Content-MD5" not in request.headers:
        request.headers["Content-MD5"] = base64.b64encode(hashlib.md5(body).digest()).decode()


_CLIENTS = _ClientCache()


class S3Client:
    """S3 access for one bucket with one configuration.

    ``cancel`` stops its body transfers (see :mod:`.cancel`); single requests such as listings
    or aborting a multipart upload are still sent after it is raised.
    """

    def __init__(self, config: S3Config) -> None:
        self.config = config
        self.bucket = config.bucket
        self._client = _CLIENTS.get(config)
        self.cancel = Cancel()

    @property
    def engine(self) -> CrtEngine | None:
        """The fast engine for item bodies (``DTOOL_S3_ENGINE``), None to use botocore."""
        return _CLIENTS.engine(self.config)

    @property
    def why_not_engine(self) -> str | None:
        """Why botocore carries item bodies here, or None when the fast engine does."""
        return _CLIENTS.why_not_engine(self.config)

    def __repr__(self) -> str:
        endpoint = errors.redact_url(self.config.endpoint_url)
        return f"S3Client(bucket={self.bucket!r}, endpoint={endpoint!r})"

    @property
    def endpoint(self) -> str:
        """The endpoint URL requests go to (botocore's choice when none is configured)."""
        return str(self._client.meta.endpoint_url)

    def call(self, operation: str, key: str | None = None, **params: Any) -> dict[str, Any]:
        """Run one S3 operation on this bucket and return its response.

        :param operation: botocore method name, e.g. ``"put_object"``
        :param key: the object key, if the operation takes one
        :param params: the remaining operation parameters
        :raises DtoolS3Error: translated from any botocore error
        """
        if key is not None:
            params["Key"] = key
        logger.debug("S3 %s s3://%s/%s", operation, self.bucket, key or "")
        try:
            response: dict[str, Any] = getattr(self._client, operation)(
                Bucket=self.bucket, **params
            )
        except ConnectionClosedError as exc:
            # Botocore has tried every attempt; its message is a URL with the whole query.
            name = self._client.meta.method_to_api_mapping.get(operation, operation)
            where = object_url(self.bucket, key)
            attempts = self.config.max_attempts
            cause = type(exc).__name__
            setting = self.config.where_set("max_attempts")
            raise connection_broke(f"{name} on", where, attempts, cause, setting) from exc
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, self.config, key) from exc
        return response

    def exists(self, key: str) -> dict[str, Any] | None:
        """Return the HEAD response of a key, or None if it does not exist (one request)."""
        try:
            return self.call("head_object", key)
        except errors.ObjectNotFound:
            return None

    def get_bytes(self, key: str, limit: int | None = None) -> tuple[bytes, dict[str, str]] | None:
        """Return (body, user metadata) of a key, or None if it does not exist.

        :param limit: read at most ``limit + 1`` bytes, so that an oversized object is seen as
                      such without being held in memory
        """

        def fetch() -> tuple[bytes, dict[str, str]] | None:
            try:
                response = self.call("get_object", key)
            except errors.ObjectNotFound:
                return None
            stream = response["Body"]
            try:
                body = stream.read() if limit is None else stream.read(limit + 1)
            finally:
                stream.close()
            return body, response.get("Metadata", {})

        return retrying(fetch, self.config, object_url(self.bucket, key))

    def put_bytes(self, key: str, body: bytes, metadata: dict[str, str] | None = None) -> None:
        """Store a small object with Content-MD5, so the server verifies what it received."""
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode("ascii")
        self.call("put_object", key, Body=body, ContentMD5=md5, Metadata=metadata or {})

    def list_objects(self, prefix: str) -> Iterator[ObjectInfo]:
        """Yield every object under a prefix, paging 1000 keys at a time.

        A listing that does not end is the server's fault, and without a check it would loop
        forever with memory growing in every caller that collects the keys. So it stops with
        :class:`~..errors.TransferFailed` when a truncated page comes without a continuation
        token or with one the server already gave, and after :data:`MAX_LISTING_PAGES` pages or
        :data:`MAX_LISTED_KEYS` keys. A key outside the prefix is a lie too: callers take the
        keys for the prefix's own (``dtool s3 rm`` deletes them), so it stops the listing.

        :raises TransferFailed: for a listing that cannot end (see above) or a key outside it
        """
        token: str | None = None
        seen: set[str] = set()
        pages = keys = 0
        while True:
            params: dict[str, Any] = {"Prefix": prefix}
            if token:
                params["ContinuationToken"] = token
            response = self.call("list_objects_v2", **params)
            pages += 1
            for entry in response.get("Contents", []):
                if not str(entry["Key"]).startswith(prefix):
                    raise self._listing_fault(
                        f"answered the listing of {object_url(self.bucket, prefix)} with the key "
                        f"{entry['Key']!r}, which is outside it"
                    )
                modified: datetime = entry["LastModified"]
                keys += 1
                yield ObjectInfo(
                    key=entry["Key"],
                    size=int(entry["Size"]),
                    last_modified=modified.timestamp(),
                    etag=str(entry.get("ETag", "")).strip('"'),
                )
            if not response.get("IsTruncated"):
                return
            token = response.get("NextContinuationToken") or None
            where = object_url(self.bucket, prefix)
            if token is None:
                raise self._listing_fault(
                    f"answered a truncated listing of {where} without a continuation token"
                )
            if token in seen:
                raise self._listing_fault(
                    f"answered page {pages} of the listing of {where} with a continuation token "
                    "it had already given"
                )
            seen.add(token)
            if pages >= MAX_LISTING_PAGES or keys >= MAX_LISTED_KEYS:
                raise self._listing_fault(
                    f"has not ended the listing of {where} after {pages} pages and {keys} keys "
                    f"(the limit is {MAX_LISTING_PAGES} pages or {MAX_LISTED_KEYS} keys)",
                    " unless that prefix really holds so many objects",
                )

    def _listing_fault(self, what: str, unless: str = "") -> errors.TransferFailed:
        server = errors.redact_url(self.config.endpoint_url) or "the default AWS endpoint"
        return errors.TransferFailed(
            f"{server} {what}: the server is at fault{unless}; report it to its operator"
        )

    def delete_many(self, keys: list[str]) -> None:
        """Delete keys in batches of 1000 (one request per batch)."""
        for start in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[start : start + 1000]]
            response = self.call("delete_objects", Delete={"Objects": batch, "Quiet": True})
            failed = response.get("Errors") or []
            if failed:
                first = failed[0]
                raise errors.TransferFailed(
                    f"could not delete {len(failed)} key(s) in s3://{self.bucket}, e.g. "
                    f"{first.get('Key')}: {first.get('Code')}"
                )

    def list_bucket_names(self) -> list[str]:
        """Return the buckets the credentials own (ListBuckets: the one request without a bucket;
        connection tests use it when no bucket is named)."""
        logger.debug("S3 list_buckets")
        try:
            response = self._client.list_buckets()
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, self.config, None) from exc
        return [str(entry["Name"]) for entry in response.get("Buckets", [])]

    def bucket_exists(self) -> bool:
        """Return whether the bucket exists (used to explain a 404)."""
        try:
            self.call("head_bucket")
        except (errors.ObjectNotFound, errors.BucketNotFound):
            return False
        return True

    def missing(self, key: str, what: str) -> errors.DtoolS3Error:
        """Return the error for a missing key, telling a missing bucket apart."""
        if not self.bucket_exists():
            return errors.BucketNotFound(
                f"bucket '{self.bucket}' does not exist at "
                f"{errors.redact_url(self.config.endpoint_url) or 'the default AWS endpoint'}: "
                "create it or check the bucket name and "
                f"{self.config.where_set('endpoint_url')}{near_misses_text(self.config)}"
            )
        return errors.ObjectNotFound(f"{what} not found: {object_url(self.bucket, key)}")

    def presign_get(self, key: str, expiry: int) -> str:
        """Return a SigV4 presigned GET URL (signing is local: no request)."""
        url: str = self._client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expiry
        )
        return url

    def public_url(self, key: str) -> str:
        """Return the unsigned URL of a key, as a public-read object is reached."""
        unsigned = _CLIENTS.get(self.config, unsigned=True)
        url: str = unsigned.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}
        )
        return url

    def anonymous_readable(self, key: str) -> bool:
        """Return whether an unsigned HEAD of ``key`` succeeds (is it really public?)."""
        unsigned = _CLIENTS.get(self.config, unsigned=True)
        logger.debug("S3 anonymous head_object s3://%s/%s", self.bucket, key)
        try:
            unsigned.head_object(Bucket=self.bucket, Key=key)
        except ClientError:
            return False
        except BotoCoreError as exc:
            raise translate(exc, self.config, key) from exc
        return True
