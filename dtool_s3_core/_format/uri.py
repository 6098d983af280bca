"""Parse and format ``s3://bucket[/uuid]`` URIs. Pure: no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlparse

from ..errors import ConfigurationError

# S3's rules, relaxed to what real servers accept (underscores and capitals exist in the wild);
# dtool keys configuration by the literal bucket name, so no normalisation happens here.
_BUCKET_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$")


@dataclass(frozen=True)
class S3Uri:
    """A parsed dtool S3 URI: a bucket, and for a dataset URI its UUID."""

    bucket: str
    uuid: str = ""

    @property
    def base_uri(self) -> str:
        return f"s3://{self.bucket}"

    def __str__(self) -> str:
        return f"{self.base_uri}/{self.uuid}" if self.uuid else self.base_uri


def parse_uri(uri: str) -> S3Uri:
    """Split an ``s3://`` URI into bucket and UUID.

    Everything after the bucket is the UUID; where a base URI is expected, use
    :func:`parse_base_uri`, which refuses a path.

    :raises ConfigurationError: if the URI is not an s3 URI or names no valid bucket
    """
    parsed = urlparse(uri)
    if parsed.scheme != "s3":
        raise ConfigurationError(f"not an S3 URI: {uri!r} (expected s3://bucket[/uuid])")
    bucket = parsed.netloc
    if not bucket or not _BUCKET_RE.match(bucket) or ".." in bucket:
        raise ConfigurationError(
            f"invalid bucket name {bucket!r} in {uri!r}: use 3-255 letters, digits, '.', '-' or '_'"
        )
    uuid = parsed.path.strip("/")
    if parsed.query or parsed.fragment:
        raise ConfigurationError(
            f"unexpected query or fragment in {uri!r}: use s3://<bucket> or s3://<bucket>/<uuid>"
        )
    return S3Uri(bucket=bucket, uuid=uuid)


_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def parse_base_uri(uri: str, listing: bool = False) -> S3Uri:
    """Parse a base URI, ``s3://<bucket>``, refusing a path after the bucket.

    dtool-s3 ignored such a path: datasets are registered at the bucket level and their data
    goes under the configured prefix, so ``s3://bucket/projects/`` silently meant
    ``s3://bucket`` and listing ``s3://bucket/name`` listed the whole bucket (#20).

    :param listing: the URI was given to list datasets (``dtool ls``), which a dataset URI would
                    not have reached: the message says how to list, or look at one dataset
    :raises ConfigurationError: for a path after the bucket, or what :func:`parse_uri` refuses
    """
    parsed = parse_uri(uri)
    if not parsed.uuid:
        return parsed
    base = parsed.base_uri
    if listing:
        raise ConfigurationError(
            f"{uri} is neither a dataset nor a base URI: list the datasets of the bucket with "
            f"'dtool ls {base}', or look at one with 'dtool summary {base}/<uuid>'"
        )
    if _UUID_RE.match(parsed.uuid):
        raise ConfigurationError(f"{uri} is a dataset URI where a base URI is expected: use {base}")
    prefix = parsed.uuid + "/"
    raise ConfigurationError(
        f"{uri} has a path after the bucket where a base URI is expected: use {base}, and to "
        f"keep new datasets under {prefix} set DTOOL_S3_DATASET_PREFIX_{parsed.bucket}={prefix}"
    )


def object_url(bucket: str, key: str | None = None) -> str:
    """The ``s3://`` URL of an object (or of the bucket), as every message names it."""
    return f"s3://{bucket}/{key}" if key else f"s3://{bucket}"
