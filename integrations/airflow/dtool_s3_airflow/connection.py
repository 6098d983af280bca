"""A ``dtool_s3`` Airflow Connection turned into dtool_s3_core's per-bucket settings.

============================================  ==========================================
Connection                                    dtool_s3_core setting
============================================  ==========================================
``extra.endpoint_url``, else ``host`` (+port)  ``endpoint_url`` (``https://`` if no scheme)
``login`` / ``password``                      ``access_key_id`` / ``secret_access_key``
``extra.session_token``                       ``session_token``
``extra.dataset_prefix``                      ``dataset_prefix``
``extra.publish_expiry``                      ``publish_expiry`` (seconds)
``extra.region``                              ``region``
``extra.addressing_style``                    ``addressing_style`` (auto, path, virtual)
============================================  ==========================================

``extra.aws_conn_id`` names an ``aws`` connection to take the endpoint, credentials, region and
role from (see :mod:`dtool_s3_airflow._aws`); the fields set here win over it.

The settings are applied with :func:`dtool_s3_core.override`, a context-local overlay: nothing is
written to ``os.environ`` or a dtool config file, so tasks and triggers that share a process
(``dag.test()``, the triggerer) never see each other's connections. Empty fields fall through to
dtool's usual sources (environment, dtool.json, the AWS credential chain).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, fields, replace
from typing import Any
from urllib.parse import urlsplit

from airflow.sdk import Connection

import dtool_s3_core
from dtool_s3_core.config import endpoint_problem
from dtool_s3_core.errors import ConfigurationError, redact_url

from .provider_info import CONN_FIELDS

log = logging.getLogger(__name__)

#: The form's fields, and endpoint_url (the amazon provider's name for the endpoint).
EXTRA_KEYS = frozenset({"endpoint_url", *CONN_FIELDS})
ADDRESSING_STYLES = ("auto", "path", "virtual")
_CREDENTIALS = ("access_key_id", "secret_access_key", "session_token")


@dataclass(frozen=True)
class ConnectionSettings:
    """The dtool S3 settings of one Airflow connection. Secrets are kept out of ``repr``."""

    conn_id: str
    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    dataset_prefix: str | None = None
    publish_expiry: int | None = None
    region: str | None = None
    addressing_style: str | None = None
    profile: str | None = None

    @classmethod
    def from_connection(
        cls, conn: Connection, extra: Mapping[str, Any] | None = None
    ) -> ConnectionSettings:
        """Read a ``dtool_s3`` Connection; ``extra`` is its decoded extra (default
        ``conn.extra_dejson``).

        :raises ConfigurationError: for half-given credentials or malformed extra values
        """
        conn_id = conn.conn_id
        extra = conn.extra_dejson if extra is None else extra
        warn_unknown(conn_id, extra, EXTRA_KEYS)
        login, password = text(conn.login), text(conn.password)
        if bool(login) != bool(password):
            given, missing = ("login", "password") if login else ("password", "login")
            raise ConfigurationError(
                f"connection {conn_id!r} sets the {given} but not the {missing}: the access key id "
                "(login) and the secret (password) go together; set both, or neither to use the "
                "AWS credential chain"
            )
        return cls(
            conn_id=conn_id,
            endpoint_url=endpoint(conn_id, text(extra.get("endpoint_url")) or conn.host, conn.port),
            access_key_id=login,
            secret_access_key=password,
            session_token=text(extra.get("session_token")),
            dataset_prefix=text(extra.get("dataset_prefix")),
            publish_expiry=seconds(conn_id, extra.get("publish_expiry")),
            region=text(extra.get("region")),
            addressing_style=addressing_style(conn_id, extra.get("addressing_style")),
        )

    def over(self, base: ConnectionSettings) -> ConnectionSettings:
        """Return ``base`` with every field set here put over it (the conn id is this one's).

        Credentials go as a set: if this connection has an access key id, the base's key, secret
        and session token are all replaced.
        """
        chosen = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in _CREDENTIALS and getattr(self, f.name) is not None
        }
        if self.access_key_id is not None:
            chosen.update({name: getattr(self, name) for name in _CREDENTIALS})
        return replace(base, **chosen)

    def overrides(self) -> dict[str, Any]:
        """Return the keyword arguments for :func:`dtool_s3_core.override` (unset ones as None)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "conn_id"}

    @contextmanager
    def applied_to(self, *locations: str, **settings: Any) -> Iterator[None]:
        """Apply these settings (plus ``settings``) to the buckets of the ``s3://`` locations.

        Local paths among ``locations`` are skipped. The scope is this context only: threads
        started inside must copy it (``asyncio.to_thread`` does).
        """
        with ExitStack() as stack:
            for bucket in buckets_of(locations):
                stack.enter_context(
                    dtool_s3_core.override(bucket, **{**self.overrides(), **settings})
                )
            yield

    def config(self, bucket: str) -> dtool_s3_core.S3Config:
        """Resolve the full configuration of ``bucket`` with these settings on top."""
        with dtool_s3_core.override(bucket, **self.overrides()):
            return dtool_s3_core.resolve_config(bucket)


def buckets_of(locations: Iterable[str]) -> list[str]:
    """Return the distinct buckets of the ``s3://`` URIs among ``locations``, in order.

    :raises ConfigurationError: for a malformed ``s3://`` URI
    """
    buckets: list[str] = []
    for location in locations:
        if is_s3(location):
            bucket = dtool_s3_core.bucket_of(location)
            if bucket not in buckets:
                buckets.append(bucket)
    return buckets


def is_s3(location: str) -> bool:
    return urlsplit(location).scheme.lower() == "s3"


def text(value: Any) -> str | None:
    """The stripped string of a field; None if it is empty or unset."""
    stripped = str(value).strip() if value is not None else ""
    return stripped or None


def warn_unknown(conn_id: str, extra: Mapping[str, Any], known: Iterable[str]) -> None:
    """Name the extra keys this provider ignores (never their values)."""
    known = frozenset(known)
    unknown = sorted(set(extra) - known)
    if unknown:
        log.warning(
            "connection %r: ignoring unknown extra field(s) %s; known: %s",
            conn_id,
            ", ".join(unknown),
            ", ".join(sorted(known)),
        )


def endpoint(conn_id: str, host: str | None, port: int | None) -> str | None:
    """The endpoint URL of ``host`` (a URL or a host name) and ``port``; None without a host."""
    host = text(host)
    if host is None:
        return None
    url = host if "://" in host else f"https://{host}"
    if url.partition("://")[0].lower() not in ("http", "https"):
        raise ConfigurationError(
            f"connection {conn_id!r}: the endpoint must be an http:// or https:// URL, "
            f"got {redact_url(host)!r}"
        )
    # Checked before urlsplit(...).port (which raises on a malformed port) and before botocore
    # (whose "Invalid endpoint" error quotes the URL, password included).
    problem = endpoint_problem(url)
    if problem is None and port:
        parts = urlsplit(url)
        if parts.port is None:
            url = parts._replace(netloc=f"{parts.netloc}:{port}").geturl()
            problem = endpoint_problem(url)
    if problem is not None:
        raise ConfigurationError(
            f"connection {conn_id!r}: the endpoint {problem} ({redact_url(url)!r}): correct the "
            "connection's endpoint_url extra, or its host and port"
        )
    return url.rstrip("/")


def addressing_style(conn_id: str, value: Any) -> str | None:
    style = text(value)
    if style is not None and style not in ADDRESSING_STYLES:
        raise ConfigurationError(
            f"connection {conn_id!r}: addressing_style must be one of "
            f"{', '.join(ADDRESSING_STYLES)}, got {style!r}"
        )
    return style


def seconds(conn_id: str, value: Any) -> int | None:
    if text(value) is None:
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        number = 0
    if number <= 0:
        raise ConfigurationError(
            f"connection {conn_id!r}: publish_expiry must be a whole number of seconds > 0, "
            f"got {value!r}"
        )
    return number
