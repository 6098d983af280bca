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
from pathlib import Path

from dtool_s3_core import ObjectBeside

from .items import PathStat
from .query import DtoolQuery

#: Relpaths that are Snakemake's bookkeeping, not results (the checksum is a SHA-256 hex).
_BOOKKEEPING_RE = re.compile(r"^snakemake-workflow-sources\.[0-9a-f]{64}\.tar\.xz$")

#: Directory of bookkeeping objects, below the bucket's dataset prefix.
DIRECTORY = ".snakemake"


def is_bookkeeping(query: DtoolQuery) -> bool:
    """Return whether a query names an object of Snakemake's, not an item."""
    return bool(_BOOKKEEPING_RE.match(query.relpath))


def path_of(query: DtoolQuery) -> str:
    """The object's path below the dataset prefix: ``.snakemake/<dataset>/<relpath>``."""
    return f"{DIRECTORY}/{query.dataset}/{query.relpath}"


class Bookkeeping:
    """One bookkeeping object, in Snakemake's terms."""

    def __init__(self, stored: ObjectBeside) -> None:
        self._stored = stored

    def stat(self) -> PathStat | None:
        found = self._stored.stat()
        if found is None:
            return None
        return PathStat(
            is_dir=False, size=found.size, mtime=found.modified, md5=None, footprint=found.size
        )

    def store(self, source: Path) -> None:
        self._stored.upload(source)

    def retrieve(self, target: Path) -> None:
        # Snakemake checks the archive's SHA-256 itself after the download.
        self._stored.download(target)

    def remove(self) -> None:
        self._stored.delete()
