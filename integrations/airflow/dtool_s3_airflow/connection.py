"""A ``dtools3`` Airflow Connection turned into dtool_s3_core's per-bucket settings.

``dtool_s3`` is the type's first name and still works. The connection may be written as JSON or
as a URI: ``dtools3://KEY:SECRET@HOST:PORT/?region_name=eu-west-1`` (``dtools3://http://...`` for
a plain-HTTP endpoint). A ``dtool_s3://`` URI cannot be read by Airflow at all (``_`` is not
allowed in a URI scheme); it is refused in one line instead of running without settings.

==============================================  ==========================================
Connection                                      dtool_s3_core setting
==============================================  ==========================================
``extra.endpoint_url``, else ``host`` (+port)   ``endpoint_url`` (``https://`` if no scheme)
``login`` / ``password``                        ``access_key_id`` / ``secret_access_key``
``extra.session_token``                         ``session_token``
``extra.dataset_prefix``                        ``dataset_prefix``
``extra.publish_expiry``                        ``publish_expiry`` (seconds)
``extra.region_name`` (or ``extra.region``)     ``region``
``extra.verify`` (false, or a CA bundle path)   ``verify``
``extra.addressing_style``                      ``addressing_style`` (auto, path, virtual)
``schema``                                      not used (a warning names it)
==============================================  ==========================================

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
from dtool_s3_core.config import (
    Origin,
    endpoint_problem,
    parse_verify,
    valid_region,
    verify_problem,
)
from dtool_s3_core.errors import ConfigurationError, redact_url

from .provider_info import CONN_FIELDS, CONN_TYPE

log = logging.getLogger(__name__)

#: The form's fields, endpoint_url (the amazon provider's name for the endpoint) and region (the
#: first name of region_name).
EXTRA_KEYS = frozenset({"endpoint_url", "region", *CONN_FIELDS})
ADDRESSING_STYLES = ("auto", "path", "virtual")
_CREDENTIALS = ("access_key_id", "secret_access_key", "session_token")
#: Each setting's field in the connection, as hints of errors name it.
_FIELD_NAMES = {
    "endpoint_url": "host and port (or extra endpoint_url)",
    "access_key_id": "login",
    "secret_access_key": "password",
    "session_token": "extra session_token",
    "dataset_prefix": "extra dataset_prefix",
    "publish_expiry": "extra publish_expiry",
    "region": "extra region_name",
    "verify": "extra verify",
    "addressing_style": "extra addressing_style",
    "profile": "profile of its aws_conn_id connection",
}


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
    verify: bool | str | None = None
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
        refuse_unreadable_uri(conn)
        extra = conn.extra_dejson if extra is None else extra
        warn_unknown(conn_id, extra, EXTRA_KEYS)
        if text(conn.schema):
            log.warning(
                "connection %r: ignoring its schema (the path of its URI): name buckets in the "
                "tasks' s3:// URIs, and a key prefix in extra dataset_prefix",
                conn_id,
            )
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
            region=region(conn_id, extra, "region_name", "region"),
            verify=verify(conn_id, extra.get("verify")),
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

    def origins(self) -> dict[str, Origin]:
        """Where each set value is in the connection, for the hints of errors (issue 20: a hint
        names the setting where it came from, not a DTOOL_S3_* key the user never set)."""
        place = f"Airflow connection '{self.conn_id}'"
        return {
            name: Origin(_FIELD_NAMES[name], place, "of")
            for name, value in self.overrides().items()
            if value is not None
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
                    dtool_s3_core.override(
                        bucket, origins=self.origins(), **{**self.overrides(), **settings}
                    )
                )
            yield

    def config(self, bucket: str) -> dtool_s3_core.S3Config:
        """Resolve the full configuration of ``bucket`` with these settings on top."""
        with dtool_s3_core.override(bucket, origins=self.origins(), **self.overrides()):
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


def refuse_unreadable_uri(conn: Connection) -> None:
    """Refuse what Airflow makes of a URI whose scheme it cannot parse (``dtool_s3://...``).

    Such a URI has no scheme for :func:`urllib.parse.urlsplit`, so Airflow keeps no type, host or
    credentials and puts the whole text in the schema; without this the tasks would run with
    dtool's defaults. The schema holds the secret, so it is not quoted.
    """
    if not conn.conn_type and "//" in (conn.schema or ""):
        raise ConfigurationError(
            f"connection {conn.conn_id!r} is a URI Airflow cannot read (a URI scheme cannot "
            "contain '_', as in dtool_s3://), so all its fields were lost: write it as "
            f"{CONN_TYPE}://KEY:SECRET@HOST:PORT ({CONN_TYPE}://http://KEY:SECRET@HOST:PORT for "
            f'plain HTTP), or as JSON with "conn_type": "{CONN_TYPE}"'
        )


def region(conn_id: str, extra: Mapping[str, Any], *names: str) -> str | None:
    """The region in the first of the extra fields ``names`` that is set.

    :raises ConfigurationError: if two of them disagree, or for a region botocore cannot use
    """
    given = {name: text(extra.get(name)) for name in names if text(extra.get(name))}
    if len(set(given.values())) > 1:
        raise ConfigurationError(
            f"connection {conn_id!r} sets {' and '.join(given)} to different regions: keep "
            f"{names[0]} only"
        )
    for name, value in given.items():
        if value is not None and not valid_region(value):
            raise ConfigurationError(
                f"connection {conn_id!r}: {name} must be letters, digits and inner hyphens, "
                f"e.g. eu-west-1, got {extra.get(name)!r}: correct the connection's {name} extra"
            )
        return value
    return None


def verify(conn_id: str, value: Any) -> bool | str | None:
    """TLS verification: True, False or a CA bundle path that exists here; None if unset.

    :raises ConfigurationError: for another value or a path that is not there
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        parsed = parse_verify(value)
    except ValueError:
        problem: str | None = f"got {value!r}"
    else:
        problem = verify_problem(parsed)
        if problem is None:
            return parsed
        problem = f"but {problem} (on this worker)"
    raise ConfigurationError(
        f"connection {conn_id!r}: verify must be true, false or the path of a CA bundle, "
        f"{problem}: correct the connection's verify extra"
    )


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
