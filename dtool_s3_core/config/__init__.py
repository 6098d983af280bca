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
import json
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from dtoolcore.utils import DEFAULT_CONFIG_PATH

from ..errors import ConfigurationError
from .model import (
    ENVIRONMENT,
    MAX_PRESIGN_EXPIRY,
    SETTING_OF,
    SETTINGS,
    MiB,
    Origin,
    S3Config,
    Setting,
    where,
)
from .nearmiss import near_misses
from .validate import endpoint_problem, parse_verify, valid_region, validate, verify_problem

__all__ = [
    "MAX_PRESIGN_EXPIRY",
    "SETTINGS",
    "MiB",
    "Origin",
    "Provenance",
    "S3Config",
    "Setting",
    "endpoint_problem",
    "explain_config",
    "near_misses",
    "override",
    "parse_verify",
    "publish_expiry_now",
    "read_config_file",
    "resolve_config",
    "settings_of",
    "valid_region",
    "verify_problem",
    "where",
]

_FIELD_TYPES = {f.name: f.type for f in fields(S3Config)}
_CREDENTIALS = ("access_key_id", "secret_access_key")
_SIZE_RE = re.compile(r"^\s*(\d+)\s*([kmg]i?b?)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"k": 1024, "m": MiB, "g": 1024 * MiB}

#: One override layer: its bucket (None for every bucket), its settings, their origins.
_Layer = tuple[str | None, Mapping[str, Any], Mapping[str, Origin]]
_overrides: contextvars.ContextVar[tuple[_Layer, ...]] = contextvars.ContextVar(
    "dtool_s3_core_overrides", default=()
)
_OVERRIDE = "dtool_s3_core.override()"


@contextmanager
def override(
    bucket: str | None = None, *, origins: Mapping[str, Origin] | None = None, **settings: Any
) -> Iterator[None]:
    """Apply settings to every S3Config resolved inside the ``with`` block (this context only).

    :param bucket: the bucket they apply to; ``None`` for every bucket
    :param origins: where each setting came from, for the hints of errors (an integration names
        its own setting: ``Origin("host", "Airflow connection 'archive'", "of")``); a setting
        without one is named as a field of ``dtool_s3_core.override()``
    :param settings: S3Config field names and values; ``None`` values are ignored
    :raises ConfigurationError: for an unknown field name
    """
    unknown = set(settings) - set(_FIELD_TYPES) - {"bucket"}
    if unknown:
        raise ConfigurationError(f"unknown S3 setting(s): {', '.join(sorted(unknown))}")
    layer = {k: v for k, v in settings.items() if v is not None}
    token = _overrides.set((*_overrides.get(), (bucket, layer, dict(origins or {}))))
    try:
        yield
    finally:
        _overrides.reset(token)


def settings_of(config: S3Config) -> dict[str, Any]:
    """Return a config's settings as :func:`override` takes them (to pin them in a scope), with
    their ``origins``, so that hints still name where each was set."""
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
    # Where each value came from, so that every hint names the place where it can be fixed.
    origins: dict[str, Origin] = {}
    for setting in SETTINGS:
        found, value, origin = _lookup_source(setting, bucket, file_values, overrides, file_name)
        if found:
            present.add(setting.field)
            origins[setting.field] = origin
        if value not in (None, ""):
            raw[setting.field] = value
    _check_credentials(bucket, raw, present, origins)
    values = {name: _coerce(name, value, origins[name]) for name, value in raw.items()}
    values.setdefault("addressing_style", "path" if values.get("endpoint_url") else "auto")
    if "endpoint_url" not in values and "checksum_mode" not in values:
        values["checksum_mode"] = "when_supported"
    overridden = any(scope == bucket for scope, _, _ in overrides)
    misses = near_misses(bucket, file_values, file_name, os.environ, overridden)
    config = S3Config(bucket=bucket, **values, origins=origins, near_misses=misses)
    validate(config)
    return config


def _lookup_source(
    setting: Setting,
    bucket: str,
    file_values: Mapping[str, Any],
    overrides: tuple[_Layer, ...],
    file_name: str = "dtool.json",
) -> tuple[bool, Any, Origin]:
    """Return (found, raw value, where it came from or would be set) of one setting."""
    for scope in (bucket, None):
        for layer_bucket, layer, origins in reversed(overrides):
            if layer_bucket == scope and setting.field in layer:
                which = f"bucket '{bucket}'" if scope is not None else "every bucket"
                fallback = Origin(setting.field, f"{_OVERRIDE} for {which}", "of")
                return True, layer[setting.field], origins.get(setting.field, fallback)
    names = []
    if setting.per_bucket:
        names.append(f"{setting.key}_{bucket}")
    if setting.global_form:
        names.append(setting.key)
    for name in names:
        if name in os.environ:
            return True, os.environ[name], Origin(name, ENVIRONMENT)
        if name in file_values:
            return True, file_values[name], Origin(name, file_name)
    return False, None, Origin(names[0])


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

    A source is an :class:`Origin` as text (``DTOOL_S3_ENDPOINT_B in the environment``, ``... in
    <config file>``, an override's or an integration's) or ``default``; ``default`` for the
    endpoint, credentials, profile and region means botocore's own chain decides. Values are
    as resolved, secrets included: mask them before showing them.
    """
    config = resolve_config(bucket, config_path)
    file_values = read_config_file(config_path)
    file_name = str(Path(config_path or DEFAULT_CONFIG_PATH).expanduser())
    overrides = _overrides.get()
    explained = []
    for setting in SETTINGS:
        found, raw, origin = _lookup_source(setting, bucket, file_values, overrides, file_name)
        source = str(origin)
        if not found or raw in (None, ""):
            source = "default"
            if setting.field == "addressing_style" and config.endpoint_url:
                source = "default for a custom endpoint"
            elif setting.field == "checksum_mode" and not config.endpoint_url:
                source = "default for AWS"
        value = getattr(config, setting.field)
        explained.append(Provenance(setting.field, setting.key, value, source))
    return config, explained


def _check_credentials(
    bucket: str, raw: Mapping[str, Any], present: set[str], origins: Mapping[str, Origin]
) -> None:
    given = [name for name in _CREDENTIALS if name in present]
    complete = [name for name in _CREDENTIALS if raw.get(name)]
    if given and len(complete) != len(_CREDENTIALS):
        missing = [
            origins.get(name) or Origin(f"{SETTING_OF[name].key}_{bucket}")
            for name in _CREDENTIALS
            if name not in complete
        ]
        others = [origins[name] for name in complete]
        other = f" ({where(*others)})" if others else ""
        raise ConfigurationError(
            f"partial credentials for bucket '{bucket}': set {where(*missing)} as well, "
            f"or remove the other key{other} to use the AWS credential chain"
        )


#: Example values shown when a setting cannot be read; other settings show their default.
_EXAMPLES = {
    "publish_expiry": "3600",
    "multipart_threshold": "1GiB",
    "part_size": "16MiB",
    "min_rate": "1KiB",
}
_SIZES = frozenset({"multipart_threshold", "part_size", "min_rate"})


def _coerce(name: str, value: Any, origin: Origin) -> Any:
    kind = str(_FIELD_TYPES[name])
    if name == "verify":
        try:
            return parse_verify(value)
        except ValueError:
            raise ConfigurationError(
                f"{origin} must be true, false or the path of a CA bundle, got {value!r}"
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
            f"{origin} must be a number, got {value!r}: use {what} such as {example}"
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


def publish_expiry_now(config: S3Config) -> int | None:
    """The publish expiry as overrides and the environment say now, else the config's own.

    ``dtool publish`` opens the dataset before it publishes, and dtool-s3 read
    ``DTOOL_S3_PUBLISH_EXPIRY`` when publishing: a variable set in the process after the dataset
    was opened still counts.
    """
    setting = next(s for s in SETTINGS if s.field == "publish_expiry")
    found, raw, origin = _lookup_source(setting, config.bucket, {}, _overrides.get())
    if not found or raw in (None, ""):
        return config.publish_expiry
    origins = {**config.origins, "publish_expiry": origin}
    fresh = replace(config, publish_expiry=_coerce("publish_expiry", raw, origin), origins=origins)
    validate(fresh)
    return fresh.publish_expiry
