"""Read an ``aws`` connection (the amazon provider's) as dtool S3 settings, roles included.

Fields are read with the amazon provider's names and precedence, so an existing connection works
as it is, without the amazon provider installed:

=====================================================  =======================================
``aws`` connection                                     dtool S3 setting
=====================================================  =======================================
``login`` / ``password`` (else ``extra.aws_access_key_id`` / ``extra.aws_secret_access_key``)
                                                       access key id / secret
``extra.aws_session_token``                            session token
``extra.region_name``                                  region
``extra.verify`` (false, or a CA bundle path)          TLS verification of S3 requests
``extra.service_config.s3.endpoint_url``, else
``extra.endpoint_url``, else ``host``                  endpoint URL
``extra.config_kwargs.s3.addressing_style``            addressing style
``extra.profile_name``                                 AWS profile
``extra.role_arn`` (+ ``extra.assume_role_kwargs``)    temporary credentials from STS AssumeRole
=====================================================  =======================================

``dataset_prefix`` and ``publish_expiry`` may be added to the extra as on a ``dtool_s3``
connection. AssumeRole is called once per hook (so once per task or trigger) with the
connection's own credentials, against ``extra.service_config.sts.endpoint_url`` or AWS's STS;
like the amazon provider, the S3 ``endpoint_url`` is never used for STS.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from airflow.sdk import Connection

from dtool_s3_core import assume_role as core_assume_role
from dtool_s3_core.errors import (
    AccessDenied,
    ConfigurationError,
    EndpointUnreachable,
    error_code,
    redact_url,
)

from .connection import (
    ConnectionSettings,
    addressing_style,
    endpoint,
    region,
    seconds,
    text,
    verify,
    warn_unknown,
)

#: The extra keys read here; the amazon provider's others are named in a warning.
AWS_EXTRA_KEYS = frozenset(
    {
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "region_name",
        "verify",
        "endpoint_url",
        "service_config",
        "config_kwargs",
        "profile_name",
        "role_arn",
        "assume_role_method",
        "assume_role_kwargs",
        "dataset_prefix",
        "publish_expiry",
        "test_bucket",
    }
)
_SESSION_NAME_CHARS = re.compile(r"[^\w+=,.@-]")
#: STS's own defaults for RoleSessionName (2-64 characters).
_SESSION_NAME_MAX = 64


def aws_settings(conn: Connection, extra: Mapping[str, Any]) -> ConnectionSettings:
    """Return the settings of an ``aws`` connection; assume its ``role_arn`` if it has one.

    :raises ConfigurationError: for malformed fields
    :raises AccessDenied: if STS refuses the role
    :raises EndpointUnreachable: if STS cannot be reached
    """
    conn_id = conn.conn_id
    warn_unknown(conn_id, extra, AWS_EXTRA_KEYS)
    key_id = text(conn.login) or text(extra.get("aws_access_key_id"))
    secret = text(conn.password) or text(extra.get("aws_secret_access_key"))
    if bool(key_id) != bool(secret):
        raise ConfigurationError(
            f"aws connection {conn_id!r} has an access key id or a secret access key but not "
            "both: set both (login and password), or neither to use the AWS credential chain"
        )
    s3_config = _section(conn_id, extra, "service_config", "s3")
    settings = ConnectionSettings(
        conn_id=conn_id,
        endpoint_url=endpoint(
            conn_id,
            text(s3_config.get("endpoint_url")) or text(extra.get("endpoint_url")) or conn.host,
            conn.port,
        ),
        access_key_id=key_id,
        secret_access_key=secret,
        session_token=text(extra.get("aws_session_token")),
        dataset_prefix=text(extra.get("dataset_prefix")),
        publish_expiry=seconds(conn_id, extra.get("publish_expiry")),
        region=region(conn_id, extra, "region_name"),
        verify=verify(conn_id, extra.get("verify")),
        addressing_style=addressing_style(
            conn_id, _section(conn_id, extra, "config_kwargs", "s3").get("addressing_style")
        ),
        profile=text(extra.get("profile_name")),
    )
    role_arn = text(extra.get("role_arn"))
    if role_arn is None:
        return settings
    return assume_role(settings, role_arn, extra)


def assume_role(
    settings: ConnectionSettings, role_arn: str, extra: Mapping[str, Any]
) -> ConnectionSettings:
    """Return ``settings`` with the temporary credentials of ``role_arn`` (one STS request)."""
    conn_id = settings.conn_id
    method = text(extra.get("assume_role_method")) or "assume_role"
    if method != "assume_role":
        raise ConfigurationError(
            f"aws connection {conn_id!r}: assume_role_method {method!r} is not supported; "
            "use assume_role (the default), or give the connection temporary credentials"
        )
    kwargs = extra.get("assume_role_kwargs") or {}
    if not isinstance(kwargs, Mapping):
        raise ConfigurationError(
            f"aws connection {conn_id!r}: assume_role_kwargs must be a JSON object, "
            f'e.g. {{"ExternalId": "...", "DurationSeconds": 3600}}'
        )
    sts_url = text(_section(conn_id, extra, "service_config", "sts").get("endpoint_url"))
    where = redact_url(sts_url) or "AWS STS"
    try:
        credentials = core_assume_role(
            role_arn,
            session_name(conn_id),
            access_key_id=settings.access_key_id,
            secret_access_key=settings.secret_access_key,
            session_token=settings.session_token,
            profile=settings.profile,
            region=settings.region,
            sts_endpoint_url=sts_url,
            params=kwargs,
        )
    except EndpointUnreachable as exc:
        raise EndpointUnreachable(
            f"aws connection {conn_id!r}: cannot reach {where} to assume {role_arn}: set "
            "extra.service_config.sts.endpoint_url to your STS endpoint"
        ) from exc
    except AccessDenied as exc:
        cause = exc.__cause__
        if cause is None or not getattr(cause, "response", None):
            raise AccessDenied(
                f"aws connection {conn_id!r}: assuming {role_arn} at {where} failed: "
                f"{type(cause).__name__}; check the connection's credentials"
            ) from exc
        raise AccessDenied(
            f"aws connection {conn_id!r}: {where} refused to let the connection's credentials "
            f"assume {role_arn} ({error_code(cause)}): check the role ARN, its trust policy and "
            "assume_role_kwargs"
        ) from exc
    return ConnectionSettings(
        conn_id=conn_id,
        endpoint_url=settings.endpoint_url,
        access_key_id=credentials.access_key_id,
        secret_access_key=credentials.secret_access_key,
        session_token=credentials.session_token,
        dataset_prefix=settings.dataset_prefix,
        publish_expiry=settings.publish_expiry,
        region=settings.region,
        verify=settings.verify,
        addressing_style=settings.addressing_style,
    )


def session_name(conn_id: str) -> str:
    """A RoleSessionName that tells in CloudTrail which connection assumed the role."""
    name = _SESSION_NAME_CHARS.sub("-", f"airflow-dtool-s3-{conn_id}")
    return name[:_SESSION_NAME_MAX]


def _section(conn_id: str, extra: Mapping[str, Any], key: str, service: str) -> Mapping[str, Any]:
    outer = extra.get(key) or {}
    inner = outer.get(service) if isinstance(outer, Mapping) else None
    if not isinstance(outer, Mapping) or not isinstance(inner, Mapping | None):
        raise ConfigurationError(
            f"aws connection {conn_id!r}: {key} must be a JSON object such as "
            f'{{"{service}": {{...}}}}'
        )
    return inner or {}
