"""Items and directories of items: status, download, upload and removal.

A query's relpath names either one item or a directory: every item whose relpath starts with
``<relpath>/``. Uploads write the exact dtool-s3 item format (``data/<sha1(relpath)>`` with
``handle`` and ``checksum`` metadata) through dtool_s3_core's transfer functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

from dtool_s3_core import errors, item_identifier

from .datasets import Dataset, Datasets, ItemStat

#: Written by Snakemake into directory outputs; bookkeeping, not data.
SNAKEMAKE_MARKERS = frozenset({".snakemake_timestamp"})


@dataclass(frozen=True)
class PathStat:
    """An item or a directory of items."""

    is_dir: bool
    size: int
    mtime: float
    md5: str | None
    footprint: int


def directory_items(items: dict[str, ItemStat], relpath: str) -> dict[str, ItemStat]:
    """Return the items below ``relpath/``."""
    start = relpath + "/"
    return {rel: stat for rel, stat in items.items() if rel.startswith(start)}


def summarise(items: dict[str, ItemStat]) -> PathStat:
    """Describe a directory by the items below it (Snakemake wants size 0 for directories)."""
    return PathStat(
        is_dir=True,
        size=0,
        mtime=max(stat.mtime for stat in items.values()),
        md5=None,
        footprint=sum(stat.size for stat in items.values()),
    )


def stat_path(datasets: Datasets, dataset: Dataset, relpath: str) -> PathStat | None:
    """Return the item or directory ``relpath``, None if the dataset has neither."""
    item = datasets.stat(dataset, relpath)
    if item is not None:
        return PathStat(False, item.size, item.mtime, item.md5, item.size)
    below = directory_items(datasets.items(dataset), relpath)
    return summarise(below) if below else None


def retrieve(datasets: Datasets, dataset: Dataset, relpath: str, target: Path) -> None:
    """Download an item to ``target``, or a directory of items below ``target``, verified."""
    if datasets.stat(dataset, relpath) is not None:
        dataset.s3.download_to(item_identifier(relpath), target)
        return
    below = directory_items(datasets.items(dataset), relpath)
    if not below:
        raise errors.ObjectNotFound(f"{dataset.describe()} has no item or directory '{relpath}'")
    target.mkdir(parents=True, exist_ok=True)
    cut = len(relpath) + 1
    dataset.s3.run_all(
        [partial(dataset.s3.download_to, item_identifier(rel), target / rel[cut:]) for rel in below]
    )


def local_files(source: Path, relpath: str) -> dict[str, Path]:
    """Return {item relpath: local file} for an output file or directory."""
    if source.is_file():
        return {relpath: source}
    if not source.is_dir():
        raise errors.ObjectNotFound(f"the output {source} does not exist locally")
    files = {
        f"{relpath}/{path.relative_to(source).as_posix()}": path
        for path in sorted(source.rglob("*"))
        if path.is_file() and path.relative_to(source).as_posix() not in SNAKEMAKE_MARKERS
    }
    if not files:
        raise errors.ConfigurationError(
            f"the directory output {source} holds no files: a dataset cannot hold an empty "
            "directory"
        )
    return files


def store(dataset: Dataset, relpath: str, source: Path) -> None:
    """Upload an output file or directory as items of a proto dataset (lost-freeze checked)."""
    dataset.s3.upload_many(local_files(source, relpath))


def remove(datasets: Datasets, dataset: Dataset, relpath: str) -> None:
    """Delete an item, or every item of a directory, with their metadata fragments."""
    if datasets.stat(dataset, relpath) is not None:
        dataset.s3.remove([relpath])
    else:
        dataset.s3.remove(directory_items(datasets.items(dataset), relpath))
