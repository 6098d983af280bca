"""Objects that Snakemake itself keeps under a default storage prefix: stored beside the dataset.

With ``--default-storage-provider dtool --default-storage-prefix dtool://<bucket>/<name>`` and no
shared file system, Snakemake uploads its workflow-source archive as
``dtool://<bucket>/<name>/snakemake-workflow-sources.<sha256>.tar.xz``, every job downloads it,
and the main process deletes it at the end of the run. Stored as an item it would enter the
manifest when the dataset is frozen, and deleting it afterwards would fail. Such objects are
plain S3 objects under ``<dataset prefix>.snakemake/<name>/`` instead: never part of a dataset,
invisible to dtool (which only reads ``dtool-<uuid>`` registrations), and removable at any time.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from dtool_s3_core._s3 import transfer
from dtool_s3_core._s3.client import S3Client

from .items import PathStat
from .query import DtoolQuery

#: Relpaths that are Snakemake's bookkeeping, not results (the checksum is a SHA-256 hex).
_BOOKKEEPING_RE = re.compile(r"^snakemake-workflow-sources\.[0-9a-f]{64}\.tar\.xz$")

#: Directory of bookkeeping objects, below the bucket's dataset prefix.
DIRECTORY = ".snakemake"


def is_bookkeeping(query: DtoolQuery) -> bool:
    """Return whether a query names an object of Snakemake's, not an item."""
    return bool(_BOOKKEEPING_RE.match(query.relpath))


class Bookkeeping:
    """One bookkeeping object: ``<prefix>.snakemake/<dataset>/<relpath>`` in the query's bucket."""

    def __init__(self, client: S3Client, prefix: str, query: DtoolQuery) -> None:
        self._client = client
        self.key = f"{prefix}{DIRECTORY}/{query.dataset}/{query.relpath}"

    def stat(self) -> PathStat | None:
        head = self._client.exists(self.key)
        if head is None:
            return None
        modified: datetime = head["LastModified"]
        size = int(head["ContentLength"])
        return PathStat(
            is_dir=False, size=size, mtime=modified.timestamp(), md5=None, footprint=size
        )

    def store(self, source: Path) -> None:
        with source.open("rb") as stream:
            transfer.upload_stream(
                self._client,
                self.key,
                stream,
                lambda md5: {},
                transfer.memory_budget(self._client.config),
            )

    def retrieve(self, target: Path) -> None:
        # Snakemake checks the archive's SHA-256 itself after the download.
        transfer.download(self._client, self.key, target)

    def remove(self) -> None:
        self._client.delete_many([self.key])
