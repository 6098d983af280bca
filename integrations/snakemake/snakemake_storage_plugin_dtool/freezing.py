"""The freeze marker ``dtool://<bucket>/<dataset>/@frozen``: storing it freezes the dataset.

Freezing goes through the core's ``S3Dataset.freeze``, which writes the manifest, overlays and
admin metadata that ``dtool freeze`` writes. The manifest's
``utc_timestamp`` of each item is the item's S3 ``Last-Modified``, the same value the plugin
reports as the item's mtime before the freeze: freezing never makes an item look newer.

README content comes from, in this order: the marker file the freeze job wrote (if not empty),
the ``readme=`` given to ``RemoteProvider.freeze_marker`` (registered here when
the Snakefile is parsed, which happens in every process that may run the freeze job), else the
README the dataset already has.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dtool_s3_core import errors, readme_text

from .datasets import Dataset, Datasets

_readmes_lock = threading.Lock()
_readmes: dict[tuple[str, str], str] = {}


def register_readme(bucket: str, dataset: str, readme: str | Mapping[str, Any]) -> None:
    """Remember the README to write when the dataset ``bucket/dataset`` is frozen."""
    with _readmes_lock:
        _readmes[(bucket, dataset)] = readme_text(readme)


def registered_readme(bucket: str, dataset: str) -> str | None:
    with _readmes_lock:
        return _readmes.get((bucket, dataset))


def readme_for(marker_file: Path, bucket: str, dataset: str) -> str | None:
    """Return the README to write at freeze time, None to keep the current one."""
    if marker_file.is_file():
        text = marker_file.read_text(encoding="utf-8")
        if text.strip():
            return text
    return registered_readme(bucket, dataset)


def freeze(datasets: Datasets, dataset: Dataset, readme: str | None) -> Dataset:
    """Freeze a proto dataset (a frozen one is returned as it is) and return it frozen."""
    if dataset.frozen:
        return dataset
    if readme is not None:
        dataset.s3.put_readme(readme)
    dataset.s3.freeze()
    frozen = datasets.find(dataset.bucket, dataset.uuid, fresh=True)
    if frozen is None or not frozen.frozen:
        raise errors.DatasetStateError(f"{dataset.describe()} did not freeze; run again")
    return frozen


def marker_document(dataset: Dataset) -> str:
    """The content of the local copy of a marker: where the frozen dataset is."""
    return (
        json.dumps(
            {
                "uri": dataset.uri,
                "uuid": dataset.uuid,
                "name": dataset.name,
                "frozen_at": dataset.frozen_at,
            },
            indent=2,
        )
        + "\n"
    )
