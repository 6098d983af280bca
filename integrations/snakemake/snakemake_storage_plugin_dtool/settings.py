"""The plugin's settings: ``--storage-dtool-<field>`` and ``SNAKEMAKE_STORAGE_DTOOL_<FIELD>``.

Every field is optional. A field left unset falls back to dtool's own per-bucket configuration
(``DTOOL_S3_*_<bucket>`` in the environment or in dtool.json), then to boto3's credential chain;
see :func:`core_overrides`. Secrets are ``repr=False``: Snakemake passes them to spawned jobs as
environment variables, never on a command line, and never prints them.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from snakemake_interface_storage_plugins.settings import StorageProviderSettingsBase

from dtool_s3_core import check_dataset_name
from dtool_s3_core.config import Origin, endpoint_problem
from dtool_s3_core.errors import ConfigurationError, redact_url


def _setting(help_text: str, secret: bool = False) -> Any:
    # Values arrive as strings (tagged settings force type=str); dtool_s3_core coerces them.
    return field(
        default=None,
        repr=not secret,
        metadata={"help": help_text, "env_var": True, "type": str},
    )


@dataclass
class StorageProviderSettings(StorageProviderSettingsBase):  # type: ignore[misc]
    endpoint_url: str | None = _setting(
        "S3 endpoint URL, e.g. https://s3.example.org (default: DTOOL_S3_ENDPOINT_<bucket>, "
        "then AWS)"
    )
    access_key: str | None = _setting(
        "S3 access key id (default: DTOOL_S3_ACCESS_KEY_ID_<bucket>, then the AWS chain)",
        secret=True,
    )
    secret_key: str | None = _setting(
        "S3 secret access key; prefer the environment variable (default: "
        "DTOOL_S3_SECRET_ACCESS_KEY_<bucket>, then the AWS chain)",
        secret=True,
    )
    session_token: str | None = _setting("S3 session token for temporary credentials", True)
    profile: str | None = _setting("AWS profile name (default: DTOOL_S3_PROFILE)")
    region: str | None = _setting("S3 region (default: DTOOL_S3_REGION, then AWS)")
    addressing_style: str | None = _setting("path, virtual or auto")
    dataset_prefix: str | None = _setting(
        "key prefix for new datasets, e.g. u/alice/ (default: DTOOL_S3_DATASET_PREFIX_<bucket>)"
    )
    max_concurrency: str | None = _setting("parallel requests per transfer (default 16)")
    multipart_threshold: str | None = _setting("multipart upload threshold, e.g. 64MiB")
    retries: str | None = _setting("attempts per S3 request (default 8)")
    config_file: str | None = _setting(
        "dtool JSON config file (default ~/.config/dtool/dtool.json)"
    )
    uuid_salt: str | None = _setting(
        "added to the UUIDs of new output datasets (1-80 letters, digits, '-', '_', '.'), "
        "e.g. a site name; every process of the workflow must use the same"
    )


#: Plugin field -> dtool_s3_core.S3Config field.
_CORE_FIELDS = {
    "endpoint_url": "endpoint_url",
    "access_key": "access_key_id",
    "secret_key": "secret_access_key",
    "session_token": "session_token",
    "profile": "profile",
    "region": "region",
    "addressing_style": "addressing_style",
    "dataset_prefix": "dataset_prefix",
    "max_concurrency": "max_concurrency",
    "multipart_threshold": "multipart_threshold",
    "retries": "max_attempts",
}


def core_overrides(settings: StorageProviderSettings | None) -> dict[str, Any]:
    """Return the settings that were given, as ``dtool_s3_core.override`` keywords."""
    if settings is None:
        return {}
    values = {core: getattr(settings, name, None) for name, core in _CORE_FIELDS.items()}
    _check_endpoint(values.get("endpoint_url"))
    given = {name: value for name, value in values.items() if value not in (None, "")}
    if not given:
        return {}
    # Hints of errors name the plugin's setting, not a DTOOL_S3_* key the user never set.
    plugin_names = {core: name for name, core in _CORE_FIELDS.items()}
    origins = {core: _origin(plugin_names[core]) for core in given}
    return {**given, "origins": origins}


def _origin(name: str) -> Origin:
    flag = name.replace("_", "-")
    return Origin(f"--storage-dtool-{flag} (or SNAKEMAKE_STORAGE_DTOOL_{name.upper()})")


def _check_endpoint(url: str | None) -> None:
    """Refuse a malformed endpoint here, where the message can name the plugin's setting.

    Otherwise the core would name it as an override, and before that fix botocore quoted the
    whole URL, password included, in Snakemake's output.
    """
    if not url:
        return
    problem = (
        "is not an http:// or https:// URL"
        if url.partition("://")[0].lower() not in ("http", "https")
        else endpoint_problem(url)
    )
    if problem is not None:
        raise ConfigurationError(
            f"the dtool storage plugin's endpoint URL {problem} ({redact_url(url)!r}, from "
            "--storage-dtool-endpoint-url or SNAKEMAKE_STORAGE_DTOOL_ENDPOINT_URL): correct it "
            "there, e.g. https://s3.example.org or http://127.0.0.1:9000"
        )


def config_path(settings: StorageProviderSettings | None) -> str | None:
    return getattr(settings, "config_file", None) or None


def uuid_salt(settings: StorageProviderSettings | None) -> str:
    """Return the salt of new datasets' UUIDs ("" for none), refusing one the rule cannot take."""
    salt = getattr(settings, "uuid_salt", None) or ""
    if salt:
        try:
            # The core's rule for salts is dtool's rule for names.
            check_dataset_name(salt)
        except ConfigurationError:
            raise ConfigurationError(
                f"the dtool storage plugin's uuid_salt {salt!r} is not 1-80 letters, digits, "
                "'-', '_' or '.' (from --storage-dtool-uuid-salt, "
                "SNAKEMAKE_STORAGE_DTOOL_UUID_SALT or uuid_salt= in the Snakefile): choose one "
                "such as 'site-a'"
            ) from None
    return salt


#: Settings that are secrets: on Snakemake's command line they end up in its log file.
SECRETS = ("access_key", "secret_key", "session_token")


def secret_flags(argv: Sequence[str]) -> list[str]:
    """Return the plugin's secret settings given as flags in ``argv`` (a command line)."""
    flags = [f"--storage-dtool-{name.replace('_', '-')}" for name in SECRETS]
    return [flag for flag in flags if any(a == flag or a.startswith(f"{flag}=") for a in argv)]
