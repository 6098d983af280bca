"""The dtool S3 hook: an Airflow Connection turned into dtool_s3_core's per-bucket settings.

A Connection of type ``dtool_s3`` maps onto the settings of every bucket a call touches:

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

The settings are applied with :func:`dtool_s3_core.override`, a context-local overlay: nothing is
written to ``os.environ`` or a dtool config file, so tasks and triggers that share a process
(``dag.test()``, the triggerer) never see each other's connections. Empty fields fall through to
dtool's usual sources (environment, dtool.json, the AWS credential chain).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from airflow.sdk import BaseHook, Connection

import dtool_s3_core
from dtool_s3_core.errors import ConfigurationError
from dtool_s3_core.uri import parse_uri

from .provider_info import CONN_FIELDS

log = logging.getLogger(__name__)

DEFAULT_CONN_ID = "dtool_s3_default"
#: The form's fields, and endpoint_url (the amazon provider's name for the endpoint).
EXTRA_KEYS = frozenset({"endpoint_url", *CONN_FIELDS})
_ADDRESSING_STYLES = ("auto", "path", "virtual")


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

    @classmethod
    def from_connection(
        cls, conn: Connection, extra: Mapping[str, Any] | None = None
    ) -> ConnectionSettings:
        """Read a Connection; ``extra`` is its decoded extra (default ``conn.extra_dejson``).

        :raises ConfigurationError: for half-given credentials or malformed extra values
        """
        conn_id = conn.conn_id
        extra = conn.extra_dejson if extra is None else extra
        unknown = sorted(set(extra) - EXTRA_KEYS)
        if unknown:
            log.warning(
                "connection %r: ignoring unknown extra field(s) %s; known: %s",
                conn_id,
                ", ".join(unknown),
                ", ".join(sorted(EXTRA_KEYS)),
            )
        login, password = _text(conn.login), _text(conn.password)
        if bool(login) != bool(password):
            given, missing = ("login", "password") if login else ("password", "login")
            raise ConfigurationError(
                f"connection {conn_id!r} sets the {given} but not the {missing}: the access key id "
                "(login) and the secret (password) go together; set both, or neither to use the "
                "AWS credential chain"
            )
        style = _text(extra.get("addressing_style"))
        if style is not None and style not in _ADDRESSING_STYLES:
            raise ConfigurationError(
                f"connection {conn_id!r}: addressing_style must be one of "
                f"{', '.join(_ADDRESSING_STYLES)}, got {style!r}"
            )
        return cls(
            conn_id=conn_id,
            endpoint_url=_endpoint(
                conn_id, _text(extra.get("endpoint_url")) or conn.host, conn.port
            ),
            access_key_id=login,
            secret_access_key=password,
            session_token=_text(extra.get("session_token")),
            dataset_prefix=_text(extra.get("dataset_prefix")),
            publish_expiry=_seconds(conn_id, extra.get("publish_expiry")),
            region=_text(extra.get("region")),
            addressing_style=style,
        )

    def overrides(self) -> dict[str, Any]:
        """Return the keyword arguments for :func:`dtool_s3_core.override` (unset ones as None)."""
        return {
            "endpoint_url": self.endpoint_url,
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
            "session_token": self.session_token,
            "dataset_prefix": self.dataset_prefix,
            "publish_expiry": self.publish_expiry,
            "region": self.region,
            "addressing_style": self.addressing_style,
        }

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


def buckets_of(locations: Iterable[str]) -> list[str]:
    """Return the distinct buckets of the ``s3://`` URIs among ``locations``, in order.

    :raises ConfigurationError: for a malformed ``s3://`` URI
    """
    buckets: list[str] = []
    for location in locations:
        if is_s3(location):
            bucket = parse_uri(location).bucket
            if bucket not in buckets:
                buckets.append(bucket)
    return buckets


def is_s3(location: str) -> bool:
    return urlsplit(location).scheme.lower() == "s3"


def _text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def _endpoint(conn_id: str, host: str | None, port: int | None) -> str | None:
    host = _text(host)
    if host is None:
        return None
    url = host if "://" in host else f"https://{host}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"connection {conn_id!r}: the endpoint must be an http:// or https:// URL, got {host!r}"
        )
    if port and parts.port is None:
        url = parts._replace(netloc=f"{parts.netloc}:{port}").geturl()
    return url.rstrip("/")


def _seconds(conn_id: str, value: Any) -> int | None:
    if _text(value) is None:
        return None
    try:
        seconds = int(str(value).strip())
    except ValueError:
        seconds = 0
    if seconds <= 0:
        raise ConfigurationError(
            f"connection {conn_id!r}: publish_expiry must be a whole number of seconds > 0, "
            f"got {value!r}"
        )
    return seconds


class DtoolS3Hook(BaseHook):
    """Access dtool datasets in S3 with the settings of one ``dtool_s3`` connection.

    :param dtool_s3_conn_id: the Airflow connection id
    """

    conn_name_attr = "dtool_s3_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "dtool_s3"
    hook_name = "dtool S3"

    def __init__(self, dtool_s3_conn_id: str = DEFAULT_CONN_ID) -> None:
        super().__init__()
        self.dtool_s3_conn_id = dtool_s3_conn_id

    @cached_property
    def settings(self) -> ConnectionSettings:
        """The connection's settings, looked up once per hook."""
        return ConnectionSettings.from_connection(self.get_connection(self.dtool_s3_conn_id))

    def get_conn(self) -> ConnectionSettings:
        return self.settings

    @classmethod
    async def aget_settings(cls, conn_id: str) -> ConnectionSettings:
        """Look the connection up without blocking the event loop (for triggers)."""
        conn = await cls.aget_connection(conn_id)
        # The synchronous extra_dejson sends a mask request to the supervisor from inside the
        # event loop, which can deadlock the triggerer; the async variant does not.
        extra = await conn.aextra_dejson() if hasattr(conn, "aextra_dejson") else None
        return ConnectionSettings.from_connection(conn, extra)

    @contextmanager
    def configured(self, *locations: str, **settings: Any) -> Iterator[None]:
        """Apply this connection to the buckets of ``locations`` for the ``with`` block.

        The connection is only looked up if one of the locations is an ``s3://`` URI.
        """
        if not any(is_s3(location) for location in locations):
            yield
            return
        with self.settings.applied_to(*locations, **settings):
            yield

    def create_dataset(
        self,
        name: str,
        base_uri: str,
        *,
        source_dir: str | None = None,
        files: Mapping[str, str] | None = None,
        readme: str | Mapping[str, Any] | None = None,
        freeze: bool = True,
        creator_username: str | None = None,
    ) -> str:
        """Create a dataset from a directory and/or {relpath: local path}; return its URI."""
        with self.configured(base_uri):
            return dtool_s3_core.create_dataset(
                name,
                base_uri,
                source_dir=source_dir,
                files=files,
                readme=readme,
                freeze=freeze,
                creator_username=creator_username,
            )

    def freeze_dataset(self, uri: str) -> str:
        with self.configured(uri):
            return dtool_s3_core.freeze_dataset(uri)

    def publish_dataset(self, uri: str, expiry: int | None = None) -> str:
        """Publish over HTTP(S); ``expiry`` overrides the connection's publish_expiry."""
        with self.configured(uri):
            return dtool_s3_core.publish_dataset(uri, expiry)

    def list_datasets(self, base_uri: str) -> list[dtool_s3_core.DatasetInfo]:
        with self.configured(base_uri):
            return dtool_s3_core.list_datasets(base_uri)


def settings_for(conn_id: str, location: str) -> ConnectionSettings:
    """The connection's settings for an ``s3://`` location; empty ones (no lookup) for a path."""
    if is_s3(location):
        return DtoolS3Hook(conn_id).settings
    return ConnectionSettings(conn_id=conn_id)


async def asettings_for(conn_id: str, location: str) -> ConnectionSettings:
    """:func:`settings_for` for the event loop."""
    if is_s3(location):
        return await DtoolS3Hook.aget_settings(conn_id)
    return ConnectionSettings(conn_id=conn_id)


def find_frozen(
    settings: ConnectionSettings, base_uri: str, name: str
) -> dtool_s3_core.DatasetInfo | None:
    """Return the frozen dataset called ``name`` under ``base_uri``; None if absent or a proto.

    :raises DatasetStateError: if several datasets have that name
    """
    with settings.applied_to(base_uri):
        info = dtool_s3_core.find_dataset(base_uri, name)
    return info if info is not None and info.frozen else None
