"""Per-bucket configuration: one frozen :class:`S3Config` and one resolver.

Precedence, highest first, for every setting of bucket ``B``:

1. a scoped override for ``B`` (:func:`override` with ``bucket="B"``), then a scoped override for
   every bucket (``bucket=None``); integrations use this instead of ``os.environ``;
2. the environment variable ``<KEY>_B``, then the JSON config file's ``<KEY>_B``
   (``config_path``, default ``~/.config/dtool/dtool.json``): the environment wins, as in dtoolcore;
3. the global key ``<KEY>`` from the environment, then from the file (only for settings that have
   a global form, see :data:`SETTINGS`);
4. the default; for endpoint, credentials, region and profile that means botocore's own chain
   (``AWS_*`` variables, ``~/.aws``, ``AWS_ENDPOINT_URL_S3``).

An empty string counts as unset, except that a per-bucket credential that is present but empty
is reported as a partial configuration.
"""

from __future__ import annotations

import contextvars
import ipaddress
import json
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dtoolcore.utils import DEFAULT_CACHE_PATH, DEFAULT_CONFIG_PATH

from .errors import ConfigurationError, redact_url

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

    def __repr__(self) -> str:
        shown = {f.name: getattr(self, f.name) for f in fields(self) if f.repr}
        shown["endpoint_url"] = redact_url(self.endpoint_url)
        return "S3Config(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"

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

_FIELD_TYPES = {f.name: f.type for f in fields(S3Config)}
_CREDENTIALS = ("access_key_id", "secret_access_key")
_SIZE_RE = re.compile(r"^\s*(\d+)\s*([kmg]i?b?)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"k": 1024, "m": MiB, "g": 1024 * MiB}

_overrides: contextvars.ContextVar[tuple[tuple[str | None, Mapping[str, Any]], ...]] = (
    contextvars.ContextVar("dtool_s3_core_overrides", default=())
)


@contextmanager
def override(bucket: str | None = None, **settings: Any) -> Iterator[None]:
    """Apply settings to every S3Config resolved inside the ``with`` block (this context only).

    :param bucket: the bucket they apply to; ``None`` for every bucket
    :param settings: S3Config field names and values; ``None`` values are ignored
    :raises ConfigurationError: for an unknown field name
    """
    unknown = set(settings) - set(_FIELD_TYPES) - {"bucket"}
    if unknown:
        raise ConfigurationError(f"unknown S3 setting(s): {', '.join(sorted(unknown))}")
    layer = {k: v for k, v in settings.items() if v is not None}
    token = _overrides.set((*_overrides.get(), (bucket, layer)))
    try:
        yield
    finally:
        _overrides.reset(token)


def settings_of(config: S3Config) -> dict[str, Any]:
    """Return a config's settings as :func:`override` takes them (to pin them in a scope)."""
    return {f.name: getattr(config, f.name) for f in fields(S3Config) if f.name != "bucket"}


def read_config_file(config_path: str | os.PathLike[str] | None) -> dict[str, Any]:
    """Return the JSON config file as a dict ({} if it does not exist).

    :raises ConfigurationError: if the file is not a JSON object
    """
    path = Path(config_path or DEFAULT_CONFIG_PATH).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigurationError(f"cannot read the dtool config file {path}: {exc}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigurationError(f"the dtool config file {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigurationError(f"the dtool config file {path} must hold a JSON object")
    return data


def resolve_config(bucket: str, config_path: str | os.PathLike[str] | None = None) -> S3Config:
    """Resolve the settings of one bucket following the precedence in the module docstring.

    :param bucket: bucket name (used literally as the key suffix, as dtool-s3 does)
    :param config_path: dtool JSON config file; default ``~/.config/dtool/dtool.json``
    :returns: a frozen S3Config
    :raises ConfigurationError: for partial credentials or malformed values
    """
    file_values = read_config_file(config_path)
    file_name = str(Path(config_path or DEFAULT_CONFIG_PATH).expanduser())
    overrides = _overrides.get()
    raw: dict[str, Any] = {}
    present: set[str] = set()
    # Where each value came from, so that a malformed one is reported where it can be fixed.
    sources: dict[str, str] = {}
    for setting in SETTINGS:
        found, value, source = _lookup_source(setting, bucket, file_values, overrides, file_name)
        if found:
            present.add(setting.field)
        if value not in (None, ""):
            raw[setting.field] = value
            sources[setting.field] = source
    _check_credentials(bucket, raw, present)
    values = {name: _coerce(name, value, bucket) for name, value in raw.items()}
    values.setdefault("addressing_style", "path" if values.get("endpoint_url") else "auto")
    if "endpoint_url" not in values and "checksum_mode" not in values:
        values["checksum_mode"] = "when_supported"
    config = S3Config(bucket=bucket, **values)
    _validate(config, sources)
    return config


def _lookup_source(
    setting: Setting,
    bucket: str,
    file_values: Mapping[str, Any],
    overrides: tuple[tuple[str | None, Mapping[str, Any]], ...],
    file_name: str = "dtool.json",
) -> tuple[bool, Any, str]:
    """Return (found, raw value, where it came from) of one setting."""
    for scope in (bucket, None):
        for layer_bucket, layer in reversed(overrides):
            if layer_bucket == scope and setting.field in layer:
                which = f"bucket '{bucket}'" if scope is not None else "every bucket"
                return True, layer[setting.field], f"override for {which}"
    names = []
    if setting.per_bucket:
        names.append(f"{setting.key}_{bucket}")
    if setting.global_form:
        names.append(setting.key)
    for name in names:
        if name in os.environ:
            return True, os.environ[name], f"environment {name}"
        if name in file_values:
            return True, file_values[name], f"{file_name} key {name}"
    return False, None, "default"


@dataclass(frozen=True)
class Provenance:
    """One resolved setting of a bucket and where its value came from."""

    field: str
    key: str
    value: Any
    source: str


def explain_config(
    bucket: str, config_path: str | os.PathLike[str] | None = None
) -> tuple[S3Config, list[Provenance]]:
    """Resolve a bucket's settings and say where each came from (for ``dtool s3 doctor``).

    A source is ``override for ...``, ``environment <KEY>``, ``<config file> key <KEY>`` or
    ``default``; ``default`` for the endpoint, credentials, profile and region means botocore's
    own chain decides. Values are as resolved, secrets included: mask them before showing them.
    """
    config = resolve_config(bucket, config_path)
    file_values = read_config_file(config_path)
    file_name = str(Path(config_path or DEFAULT_CONFIG_PATH).expanduser())
    overrides = _overrides.get()
    explained = []
    for setting in SETTINGS:
        found, raw, source = _lookup_source(setting, bucket, file_values, overrides, file_name)
        if not found or raw in (None, ""):
            source = "default"
            if setting.field == "addressing_style" and config.endpoint_url:
                source = "default for a custom endpoint"
            elif setting.field == "checksum_mode" and not config.endpoint_url:
                source = "default for AWS"
        value = getattr(config, setting.field)
        explained.append(Provenance(setting.field, setting.key, value, source))
    return config, explained


def _check_credentials(bucket: str, raw: Mapping[str, Any], present: set[str]) -> None:
    given = [name for name in _CREDENTIALS if name in present]
    complete = [name for name in _CREDENTIALS if raw.get(name)]
    if given and len(complete) != len(_CREDENTIALS):
        missing = [
            f"DTOOL_S3_{name.upper()}_{bucket}" for name in _CREDENTIALS if name not in complete
        ]
        raise ConfigurationError(
            f"partial credentials for bucket '{bucket}': set {' and '.join(missing)} as well, "
            "or remove the other key to use the AWS credential chain"
        )


#: Example values shown when a setting cannot be read; other settings show their default.
_EXAMPLES = {
    "publish_expiry": "3600",
    "multipart_threshold": "1GiB",
    "part_size": "16MiB",
    "min_rate": "1KiB",
}
_KEYS = {setting.field: setting.key for setting in SETTINGS}
_SIZES = frozenset({"multipart_threshold", "part_size", "min_rate"})


def _coerce(name: str, value: Any, bucket: str) -> Any:
    kind = str(_FIELD_TYPES[name])
    if name == "verify":
        try:
            return parse_verify(value)
        except ValueError:
            raise ConfigurationError(
                f"DTOOL_S3_VERIFY for bucket '{bucket}' must be true, false or the path of a CA "
                f"bundle, got {value!r}"
            ) from None
    try:
        if name in _SIZES:
            return _parse_size(value)
        if kind.startswith("int"):
            return int(value)
        if kind.startswith("float"):
            return float(value)
    except (TypeError, ValueError) as exc:
        what = "a whole number" if kind.startswith("int") else "a number"
        if name in _SIZES:
            what = "a size"
        example = _EXAMPLES.get(name) or str(S3Config.__dataclass_fields__[name].default)
        raise ConfigurationError(
            f"{_KEYS[name]} for bucket '{bucket}' must be a number, got {value!r}: "
            f"use {what} such as {example}"
        ) from exc
    return str(value)


def _parse_size(value: Any) -> int:
    if isinstance(value, int):
        return value
    match = _SIZE_RE.match(str(value))
    if not match:
        raise ValueError(value)
    number, unit = match.groups()
    return int(number) * (_SIZE_UNITS[unit[0].lower()] if unit else 1)


def _validate(config: S3Config, sources: Mapping[str, str] | None = None) -> None:
    """Refuse values that cannot work, before any client is built.

    :param sources: where each value came from (see :func:`_lookup_source`), for the messages
    """
    bucket = config.bucket
    if config.addressing_style not in {"auto", "path", "virtual"}:
        raise ConfigurationError(
            f"DTOOL_S3_ADDRESSING_STYLE for bucket '{bucket}' must be auto, path or virtual, "
            f"got {config.addressing_style!r}"
        )
    if config.checksum_mode not in {"when_required", "when_supported"}:
        raise ConfigurationError(
            f"DTOOL_S3_CHECKSUM_MODE for bucket '{bucket}' must be when_required or "
            f"when_supported, got {config.checksum_mode!r}"
        )
    if config.engine not in {"crt", "botocore"}:
        raise ConfigurationError(
            f"DTOOL_S3_ENGINE for bucket '{bucket}' must be crt or botocore, got {config.engine!r}"
        )
    if config.endpoint_url and not re.match(r"^https?://[^/\s]+", config.endpoint_url):
        raise ConfigurationError(
            f"DTOOL_S3_ENDPOINT_{bucket} must be an http:// or https:// URL, "
            f"got {redact_url(config.endpoint_url)!r}"
        )
    url = config.endpoint_url
    source = (sources or {}).get("endpoint_url") or f"DTOOL_S3_ENDPOINT_{bucket}"
    if not url and os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() != "true":
        # botocore's own chain, which botocore would refuse with the whole URL in its message.
        name = next(
            (n for n in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL") if os.environ.get(n)), ""
        )
        url, source = os.environ.get(name), f"environment {name}"
    problem = endpoint_problem(url) if url else None
    if url and problem:
        # botocore would refuse it with the whole URL, password included, in its message.
        raise ConfigurationError(
            f"the endpoint URL for bucket '{bucket}' {problem} "
            f"({redact_url(url)!r}, from {source}): correct it there, e.g. "
            "https://s3.example.org or http://127.0.0.1:9000"
        )
    _validate_region(config, sources or {})
    _validate_verify(config, sources or {})
    if config.publish_expiry is not None and not 0 < config.publish_expiry <= MAX_PRESIGN_EXPIRY:
        raise ConfigurationError(
            f"DTOOL_S3_PUBLISH_EXPIRY must be between 1 and {MAX_PRESIGN_EXPIRY} seconds "
            f"(7 days, the SigV4 limit), got {config.publish_expiry}"
        )
    if config.multipart_threshold > 5 * 1024 * MiB:
        raise ConfigurationError(
            f"DTOOL_S3_MULTIPART_THRESHOLD for bucket '{bucket}' must be at most 5GiB (the S3 "
            f"limit of one PUT), got {config.multipart_threshold} bytes"
        )
    if config.part_size < 5 * MiB:
        raise ConfigurationError(
            f"DTOOL_S3_MULTIPART_PART_SIZE for bucket '{bucket}' must be at least 5 MiB "
            f"(the S3 limit), got {config.part_size} bytes"
        )
    for name in ("max_concurrency", "max_attempts", "connect_timeout", "read_timeout"):
        value = getattr(config, name)
        if value <= 0:
            raise ConfigurationError(
                f"{_KEYS[name]} for bucket '{bucket}' must be more than 0, got {value}: "
                f"the default is {S3Config.__dataclass_fields__[name].default}"
            )


#: A region as botocore accepts one (it goes into host names): one DNS label, not all digits.
#: Custom endpoints take any such name (``garage``, ``default``), so no more is asked.
_REGION = re.compile(r"(?!\d+$)(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def valid_region(region: str) -> bool:
    """Whether botocore can use ``region`` (integrations check it where they can name the field)."""
    return _REGION.fullmatch(region) is not None


def _validate_region(config: S3Config, sources: Mapping[str, str]) -> None:
    """Refuse a region botocore would refuse with a traceback, naming where it was set."""
    region = config.region
    source = sources.get("region") or f"DTOOL_S3_REGION_{config.bucket}"
    if not region:
        # botocore's own chain; a profile's region is left to botocore.
        region, source = os.environ.get("AWS_DEFAULT_REGION"), "environment AWS_DEFAULT_REGION"
    if region and not valid_region(region):
        raise ConfigurationError(
            f"the region for bucket '{config.bucket}' must be letters, digits and inner "
            f"hyphens, e.g. eu-west-1, got {region!r} (from {source}): correct it there"
        )


_TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
_FALSE_WORDS = frozenset({"false", "no", "off", "0"})


def parse_verify(value: Any) -> bool | str:
    """Read a ``verify`` value: a boolean word (``true``/``false``, ...) or a CA bundle path.

    :raises ValueError: for a value that is neither a boolean nor a string
    """
    if isinstance(value, bool):
        return value
    if not isinstance(value, str):
        raise ValueError(value)
    word = value.strip().lower()
    if word in _TRUE_WORDS | _FALSE_WORDS:
        return word in _TRUE_WORDS
    return value.strip()


def verify_problem(verify: bool | str) -> str | None:
    """Return why a CA bundle path cannot be used here, or None (booleans always can)."""
    if isinstance(verify, bool) or os.path.isfile(verify) or os.path.isdir(verify):
        return None
    return f"{verify!r} is not a file or directory here"


def _validate_verify(config: S3Config, sources: Mapping[str, str]) -> None:
    problem = verify_problem(config.verify)
    if problem is not None:
        source = sources.get("verify") or f"DTOOL_S3_VERIFY_{config.bucket}"
        raise ConfigurationError(
            f"the TLS verify setting for bucket '{config.bucket}' must be true, false or the "
            f"path of a CA bundle, but {problem} (from {source}): correct it there"
        )


#: A DNS host name as botocore accepts it: labels of letters, digits and inner hyphens.
_HOST_NAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?")


def endpoint_problem(url: str) -> str | None:
    """Return what makes an ``http(s)://`` endpoint URL unusable, or None if nothing does.

    The answer is a phrase such as ``"has a port that is not a number from 1 to 65535"``, to
    follow the name of the setting. It never quotes the URL, which may hold a password.
    Integrations use it to check an endpoint where they can name their own setting.
    """
    if any(character in url for character in "\t\r\n"):
        return "holds a tab or a line break"
    after_scheme = url.partition("://")[2]
    netloc, *rest = re.split(r"[/?#]", after_scheme, maxsplit=1)
    if rest and "@" in rest[0]:
        # A parser ends the host at the "/" and would take part of the password for the host.
        return "has a '/', '?' or '#' in its user name or password (percent-encode them)"
    host_port = netloc.rpartition("@")[2]
    if host_port.startswith("["):
        if "]" not in host_port:
            return "has an IPv6 address without its closing ']'"
        after = host_port.partition("]")[2]
        if after and not after.startswith(":"):
            return "has text after its IPv6 address other than ':<port>'"
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:
        return "has a host that does not parse"
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        return "has a port that is not a number from 1 to 65535"
    if not hostname:
        return "has no host name"
    if ":" in hostname:
        try:
            ipaddress.IPv6Address(hostname.partition("%")[0])
        except ValueError:
            return "has an IPv6 address that does not parse"
        return None
    if len(hostname) > 255 or not _HOST_NAME.fullmatch(hostname):
        return "has a host name that is not a valid DNS name or IP address"
    return None


def publish_expiry_now(config: S3Config) -> int | None:
    """The publish expiry as overrides and the environment say now, else the config's own.

    ``dtool publish`` opens the dataset before it publishes, and dtool-s3 read
    ``DTOOL_S3_PUBLISH_EXPIRY`` when publishing: a variable set in the process after the dataset
    was opened still counts.
    """
    setting = next(s for s in SETTINGS if s.field == "publish_expiry")
    found, raw, _ = _lookup_source(setting, config.bucket, {}, _overrides.get())
    if not found or raw in (None, ""):
        return config.publish_expiry
    fresh = replace(config, publish_expiry=_coerce("publish_expiry", raw, config.bucket))
    _validate(fresh)
    return fresh.publish_expiry
