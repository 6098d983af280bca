"""What one bucket's configuration is: the settings table, :class:`S3Config` and where a value
came from (:class:`Origin`), which every hint names so that a user fixes the right place."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from dtoolcore.utils import DEFAULT_CACHE_PATH

from ..errors import redact_url

#: The place of a setting read from the process environment.
ENVIRONMENT = "the environment"


@dataclass(frozen=True)
class Origin:
    """Where a setting's value came from, or, for a default, the key that would set it.

    ``place`` is ``the environment``, a config file's path, ``dtool_s3_core.override()`` or an
    integration's own (``Airflow connection 'archive'``); ``name`` is the key or field there.
    """

    name: str
    place: str = ""
    preposition: str = "in"

    def __str__(self) -> str:
        return where(self)


def where(*origins: Origin) -> str:
    """Name settings, those of one place together: ``A and B in the environment, C in f.json``."""
    groups: dict[tuple[str, str], list[str]] = {}
    for origin in origins:
        names = groups.setdefault((origin.place, origin.preposition), [])
        if origin.name not in names:
            names.append(origin.name)
    parts = []
    for (place, preposition), names in groups.items():
        joined = " and ".join(names)
        parts.append(f"{joined} {preposition} {place}" if place else joined)
    return ", ".join(parts)


MiB = 1024 * 1024
#: SigV4 presigned URLs are valid for at most seven days.
MAX_PRESIGN_EXPIRY = 7 * 24 * 3600


@dataclass(frozen=True, repr=False)
class S3Config:
    """Everything needed to talk to one bucket. Secrets are kept out of ``repr``."""

    bucket: str
    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    profile: str | None = None
    region: str | None = None
    #: botocore's ``verify``: True checks TLS certificates against the default trust store (or
    #: ``AWS_CA_BUNDLE``), False does not check them, a path checks them against that CA bundle.
    verify: bool | str = True
    addressing_style: str = "auto"
    dataset_prefix: str = ""
    publish_expiry: int | None = None
    max_concurrency: int = 16
    multipart_threshold: int = 1024 * MiB
    part_size: int = 16 * MiB
    checksum_mode: str = "when_required"
    max_attempts: int = 8
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    min_rate: int = 1024
    cache_directory: str = DEFAULT_CACHE_PATH
    engine: str = "crt"
    #: Where each setting that was set came from (field name -> origin), for the messages.
    origins: Mapping[str, Origin] = field(default_factory=dict, repr=False, compare=False)
    #: Settings that look meant for this bucket but do not apply to it (see ``near_misses``).
    near_misses: tuple[str, ...] = field(default=(), repr=False, compare=False)

    def __repr__(self) -> str:
        shown = {f.name: getattr(self, f.name) for f in fields(self) if f.repr}
        shown["endpoint_url"] = redact_url(self.endpoint_url)
        return "S3Config(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"

    def origin(self, name: str) -> Origin:
        """Where setting ``name`` (a field) came from; for a default, the key that would set it."""
        found = self.origins.get(name)
        if found is not None:
            return found
        setting = SETTING_OF[name]
        return Origin(f"{setting.key}_{self.bucket}" if setting.per_bucket else setting.key)

    def where_set(self, *names: str) -> str:
        """The settings ``names`` as a hint names them: ``A and B in the environment``."""
        return where(*(self.origin(name) for name in names))

    def client_key(self) -> tuple[Any, ...]:
        """Return the settings that decide how a client is built (the client-cache key)."""
        return (
            self.endpoint_url,
            self.access_key_id,
            self.secret_access_key,
            self.session_token,
            self.profile,
            self.region,
            self.verify,
            self.addressing_style,
            self.checksum_mode,
            self.max_attempts,
            self.connect_timeout,
            self.read_timeout,
            self.min_rate,
            self.max_concurrency,
            self.engine,
        )


@dataclass(frozen=True)
class Setting:
    """How one S3Config field is named in dtool's configuration."""

    field: str
    key: str
    per_bucket: bool = True
    global_form: bool = True
    doc: str = ""


#: The configuration table; docs/configuration.md is generated from the same facts.
SETTINGS: tuple[Setting, ...] = (
    Setting("endpoint_url", "DTOOL_S3_ENDPOINT", global_form=False, doc="endpoint URL"),
    Setting("access_key_id", "DTOOL_S3_ACCESS_KEY_ID", global_form=False, doc="access key id"),
    Setting("secret_access_key", "DTOOL_S3_SECRET_ACCESS_KEY", global_form=False, doc="secret"),
    Setting("session_token", "DTOOL_S3_SESSION_TOKEN", global_form=False, doc="session token"),
    Setting("dataset_prefix", "DTOOL_S3_DATASET_PREFIX", doc="prefix for new datasets"),
    Setting("publish_expiry", "DTOOL_S3_PUBLISH_EXPIRY", doc="presigned URL lifetime (s)"),
    Setting("profile", "DTOOL_S3_PROFILE", doc="AWS profile name"),
    Setting("region", "DTOOL_S3_REGION", doc="region"),
    Setting("verify", "DTOOL_S3_VERIFY", doc="TLS certificate check: true, false or a CA bundle"),
    Setting("addressing_style", "DTOOL_S3_ADDRESSING_STYLE", doc="path, virtual or auto"),
    Setting("max_concurrency", "DTOOL_S3_MAX_CONCURRENCY", doc="parallel requests"),
    Setting("multipart_threshold", "DTOOL_S3_MULTIPART_THRESHOLD", doc="bytes"),
    Setting("part_size", "DTOOL_S3_MULTIPART_PART_SIZE", doc="bytes"),
    Setting("checksum_mode", "DTOOL_S3_CHECKSUM_MODE", doc="when_required or when_supported"),
    Setting("max_attempts", "DTOOL_S3_MAX_ATTEMPTS", doc="attempts per request"),
    Setting("connect_timeout", "DTOOL_S3_CONNECT_TIMEOUT", doc="seconds"),
    Setting("read_timeout", "DTOOL_S3_READ_TIMEOUT", doc="seconds"),
    Setting("min_rate", "DTOOL_S3_MIN_RATE", doc="bytes/s a body keeps up (0: no floor)"),
    Setting("engine", "DTOOL_S3_ENGINE", doc="crt (fast, default) or botocore: item transfers"),
    Setting("cache_directory", "DTOOL_CACHE_DIRECTORY", per_bucket=False, doc="download cache"),
)
#: The setting of each S3Config field.
SETTING_OF: dict[str, Setting] = {setting.field: setting for setting in SETTINGS}
