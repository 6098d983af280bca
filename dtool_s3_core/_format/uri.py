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

    The path of a base URI is ignored beyond its first component, as in dtool-s3: datasets live at
    the bucket level and their location inside the bucket comes from the registration key.

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


def object_url(bucket: str, key: str | None = None) -> str:
    """The ``s3://`` URL of an object (or of the bucket), as every message names it."""
    return f"s3://{bucket}/{key}" if key else f"s3://{bucket}"
