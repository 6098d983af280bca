"""The query syntax ``dtool://<bucket>/<dataset>/<relpath>``. Pure: no I/O.

``<dataset>`` is a dataset UUID or a dataset name; ``<relpath>`` is an item relpath (or the
relpath of a directory of items). The relpath ``@frozen`` names the freeze marker of the dataset.
Queries may hold Snakemake wildcards (``{sample}``) anywhere: Snakemake builds storage objects
from patterns too, so parsing never needs the wildcards filled in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SCHEME = "dtool"
PREFIX = f"{SCHEME}://"
MARKER = "@frozen"
_BUCKET_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$")
_WILDCARD_RE = re.compile(r"\{[^{}]*\}")


class QueryError(ValueError):
    """A query that is not ``dtool://<bucket>/<dataset>/<relpath>``; the message says why."""


@dataclass(frozen=True)
class DtoolQuery:
    """A parsed query."""

    bucket: str
    dataset: str
    relpath: str

    @property
    def is_marker(self) -> bool:
        return self.relpath == MARKER

    @property
    def local_suffix(self) -> str:
        return f"{self.bucket}/{self.dataset}/{self.relpath}"

    @property
    def dataset_suffix(self) -> str:
        return f"{self.bucket}/{self.dataset}"

    def item_query(self, relpath: str) -> str:
        """Return the query of another relpath of the same dataset, written the same way."""
        return f"{PREFIX}{self.bucket}/{self.dataset}/{relpath}"

    def __str__(self) -> str:
        return self.item_query(self.relpath)


def has_wildcards(text: str) -> bool:
    return bool(_WILDCARD_RE.search(text))


def parse_query(query: str) -> DtoolQuery:
    """Split a query into bucket, dataset and relpath.

    :raises QueryError: with a one-line reason and the fix
    """
    if not isinstance(query, str) or not query.startswith(PREFIX):
        raise QueryError(f"expected {PREFIX}<bucket>/<dataset>/<relpath>")
    rest = query[len(PREFIX) :]
    parts = rest.split("/")
    if len(parts) < 3:
        raise QueryError(
            f"{query} names no item: use {PREFIX}<bucket>/<dataset>/<relpath> "
            f"(or {PREFIX}<bucket>/<dataset>/{MARKER} for the freeze marker)"
        )
    if any(part in {"", ".", ".."} for part in parts):
        raise QueryError(
            f"{query} has an empty, '.' or '..' path component (or a trailing '/'): "
            "give a normalised relpath"
        )
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in rest):
        raise QueryError(f"{query!r} contains control characters")
    bucket, dataset, relpath = parts[0], parts[1], "/".join(parts[2:])
    if not has_wildcards(bucket) and not _BUCKET_RE.match(bucket):
        raise QueryError(f"invalid bucket name {bucket!r} in {query}")
    reserved = [part for part in parts[2:] if part.startswith("@")]
    if reserved and relpath != MARKER:
        if MARKER in reserved:
            raise QueryError(
                f"{MARKER} must be the whole relpath: {PREFIX}{bucket}/{dataset}/{MARKER}"
            )
        raise QueryError(
            f"relpath components starting with '@' are reserved (the only one is {MARKER}): "
            f"rename {reserved[0]!r} in {query}"
        )
    return DtoolQuery(bucket=bucket, dataset=dataset, relpath=relpath)


def to_dtool_query(uri: str) -> str:
    """Map dtool's native ``s3://<bucket>/<uuid-or-name>/<relpath>`` onto the plugin's scheme.

    ``dtool://`` queries are returned unchanged.

    :raises QueryError: for any other scheme
    """
    if uri.startswith(PREFIX):
        return uri
    if uri.startswith("s3://"):
        return PREFIX + uri[len("s3://") :]
    raise QueryError(f"expected s3://<bucket>/<dataset>/<relpath> or {PREFIX}..., got {uri!r}")
