"""Temporary credentials from STS AssumeRole, for settings that name a role instead of keys."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import errors
from .client import session


@dataclass(frozen=True)
class TemporaryCredentials:
    """What STS hands out for a role; the secret parts never show in a repr."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)


def assume_role(
    role_arn: str,
    session_name: str,
    *,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    session_token: str | None = None,
    profile: str | None = None,
    region: str | None = None,
    sts_endpoint_url: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> TemporaryCredentials:
    """Assume ``role_arn`` with these credentials (else the AWS chain); one STS request.

    :param sts_endpoint_url: the STS endpoint (default: AWS's); an S3 endpoint is never used
    :param params: further AssumeRole parameters, e.g. ``ExternalId``, ``DurationSeconds``
    :raises EndpointUnreachable: if STS cannot be reached
    :raises AccessDenied: if STS refuses the role or the request fails
    """
    # Imported here, like boto3 in .client: botocore.config loads awscrt, ~0.5 s that every
    # dtool command listing its brokers would otherwise pay.
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    where = errors.redact_url(sts_endpoint_url) or "AWS STS"
    sts = session(access_key_id, secret_access_key, session_token, profile, region or "us-east-1")
    client = sts.client(
        "sts",
        endpoint_url=sts_endpoint_url,
        config=Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=10),
    )
    request = {"RoleSessionName": session_name, **(params or {}), "RoleArn": role_arn}
    try:
        answer = client.assume_role(**request)
    except EndpointConnectionError as exc:
        raise errors.EndpointUnreachable(
            f"cannot reach {where} to assume {role_arn}: set the STS endpoint"
        ) from exc
    except ClientError as exc:
        raise errors.AccessDenied(
            f"{where} refused to let these credentials assume {role_arn} "
            f"({errors.error_code(exc)}): check the role ARN and its trust policy"
        ) from exc
    except BotoCoreError as exc:
        raise errors.AccessDenied(
            f"assuming {role_arn} at {where} failed: {type(exc).__name__}; check the credentials"
        ) from exc
    credentials = answer["Credentials"]
    return TemporaryCredentials(
        access_key_id=str(credentials["AccessKeyId"]),
        secret_access_key=str(credentials["SecretAccessKey"]),
        session_token=str(credentials["SessionToken"]),
    )
