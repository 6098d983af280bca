"""Values that cannot work, refused in one line before any client is built."""

from __future__ import annotations

import ipaddress
import os
import re
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigurationError, redact_url
from .model import ENVIRONMENT, MAX_PRESIGN_EXPIRY, MiB, Origin, S3Config


def validate(config: S3Config) -> None:
    """Refuse values that cannot work, before any client is built, naming where each was set."""
    bucket = config.bucket
    if config.addressing_style not in {"auto", "path", "virtual"}:
        raise ConfigurationError(
            f"{config.origin('addressing_style')} must be auto, path or virtual, "
            f"got {config.addressing_style!r}"
        )
    if config.checksum_mode not in {"when_required", "when_supported"}:
        raise ConfigurationError(
            f"{config.origin('checksum_mode')} must be when_required or "
            f"when_supported, got {config.checksum_mode!r}"
        )
    if config.engine not in {"crt", "botocore"}:
        raise ConfigurationError(
            f"{config.origin('engine')} must be crt or botocore, got {config.engine!r}"
        )
    if config.endpoint_url and not re.match(r"^https?://[^/\s]+", config.endpoint_url):
        raise ConfigurationError(
            f"{config.origin('endpoint_url')} must be an http:// or https:// URL, "
            f"got {redact_url(config.endpoint_url)!r}"
        )
    url = config.endpoint_url
    source = config.origin("endpoint_url")
    if not url and os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() != "true":
        # botocore's own chain, which botocore would refuse with the whole URL in its message.
        name = next(
            (n for n in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL") if os.environ.get(n)), ""
        )
        url, source = os.environ.get(name), Origin(name, ENVIRONMENT)
    problem = endpoint_problem(url) if url else None
    if url and problem:
        # botocore would refuse it with the whole URL, password included, in its message.
        raise ConfigurationError(
            f"the endpoint URL for bucket '{bucket}' {problem} "
            f"({redact_url(url)!r}, from {source}): correct it there, e.g. "
            "https://s3.example.org or http://127.0.0.1:9000"
        )
    _validate_region(config)
    _validate_verify(config)
    if config.publish_expiry is not None and not 0 < config.publish_expiry <= MAX_PRESIGN_EXPIRY:
        raise ConfigurationError(
            f"{config.origin('publish_expiry')} must be between 1 and {MAX_PRESIGN_EXPIRY} seconds "
            f"(7 days, the SigV4 limit), got {config.publish_expiry}"
        )
    if config.multipart_threshold > 5 * 1024 * MiB:
        raise ConfigurationError(
            f"{config.origin('multipart_threshold')} must be at most 5GiB (the S3 "
            f"limit of one PUT), got {config.multipart_threshold} bytes"
        )
    if config.part_size < 5 * MiB:
        raise ConfigurationError(
            f"{config.origin('part_size')} must be at least 5 MiB "
            f"(the S3 limit), got {config.part_size} bytes"
        )
    for name in ("max_concurrency", "max_attempts", "connect_timeout", "read_timeout"):
        value = getattr(config, name)
        if value <= 0:
            raise ConfigurationError(
                f"{config.origin(name)} must be more than 0, got {value}: "
                f"the default is {S3Config.__dataclass_fields__[name].default}"
            )


#: A region as botocore accepts one (it goes into host names): one DNS label, not all digits.
#: Custom endpoints take any such name (``garage``, ``default``), so no more is asked.
_REGION = re.compile(r"(?!\d+$)(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def valid_region(region: str) -> bool:
    """Whether botocore can use ``region`` (integrations check it where they can name the field)."""
    return _REGION.fullmatch(region) is not None


def _validate_region(config: S3Config) -> None:
    """Refuse a region botocore would refuse with a traceback, naming where it was set."""
    region = config.region
    source = config.origin("region")
    if not region:
        # botocore's own chain; a profile's region is left to botocore.
        region = os.environ.get("AWS_DEFAULT_REGION")
        source = Origin("AWS_DEFAULT_REGION", ENVIRONMENT)
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


def _validate_verify(config: S3Config) -> None:
    problem = verify_problem(config.verify)
    if problem is not None:
        raise ConfigurationError(
            f"the TLS verify setting for bucket '{config.bucket}' must be true, false or the "
            f"path of a CA bundle, but {problem} (from {config.origin('verify')}): correct it there"
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
    if parts.path.strip("/") or parts.query or parts.fragment:
        # Mostly the bucket put there (http://host/bucket): botocore would then ask for
        # /bucket/bucket/key, and a 404 or 403 would hide the real mistake.
        shown = parts.path + (f"?{parts.query}" if parts.query else "")
        return (
            f"has a path ({shown!r}), which an S3 endpoint takes none of (the bucket goes in "
            "the s3:// URI)"
        )
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
