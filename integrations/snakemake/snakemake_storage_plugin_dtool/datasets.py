"""Finding, creating and describing the datasets that queries name, with per-process caches.

Frozen datasets never change, so their admin metadata and manifest are read once per process and
kept. Proto datasets change while the workflow runs, so their state is read again when asked.

Which dataset a name means, and how an output dataset is created, is dtool_s3_core's rule
(:func:`dtool_s3_core.find_dataset`, :func:`dtool_s3_core.find_or_create_dataset`): output
datasets get a UUID derived from endpoint, bucket, prefix, name and the ``uuid_salt`` setting,
so every process that writes into the dataset "results" of a bucket (local jobs, cluster jobs,
several Snakemake invocations) creates or finds the *same* dataset, and finding it is a GET or
two instead of a scan of the bucket. This
module only remembers the answers: a name's UUID, and one listing per bucket for the names of
datasets that other tools made.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from dtool_s3_core import (
    DatasetInfo,
    ObjectBeside,
    S3Dataset,
    errors,
    find_dataset,
    find_or_create_dataset,
    is_dataset_uuid,
    list_datasets,
    override,
    resolve_config,
)


@dataclass(frozen=True)
class ItemStat:
    """What Snakemake wants to know of one item."""

    size: int
    mtime: float
    md5: str | None


@dataclass(frozen=True)
class Dataset:
    """A dataset found in a bucket, with the core's view of it (``s3``)."""

    bucket: str
    uuid: str
    name: str
    frozen: bool
    frozen_at: float | None
    s3: S3Dataset = field(compare=False, repr=False)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.uuid}"

    def describe(self) -> str:
        return f"dataset '{self.name}' ({self.uri})"


class FrozenDatasetError(errors.DatasetStateError):
    """A write into a frozen dataset was attempted."""

    def __init__(self, dataset: Dataset) -> None:
        super().__init__(
            f"{dataset.describe()} is frozen and cannot change: write the outputs into a new "
            f"dataset name instead (e.g. '{dataset.name}-v2'); nothing was changed"
        )


class Datasets:
    """Dataset lookups for one storage provider (one set of settings), thread-safe."""

    def __init__(
        self,
        overrides: dict[str, Any],
        config_path: str | None,
        logger: logging.Logger,
        salt: str = "",
    ) -> None:
        self._overrides = overrides
        self._salt = salt
        self._logger = logger
        self.config_path = config_path
        self._lock = threading.RLock()
        self._opened: dict[tuple[str, str], S3Dataset] = {}
        self._frozen: dict[tuple[str, str], Dataset] = {}
        self._names: dict[tuple[str, str], str] = {}
        self._listings: dict[str, list[DatasetInfo]] = {}

    @contextmanager
    def scope(self) -> Iterator[None]:
        """Apply the plugin's settings to dtool_s3_core (and to dtoolcore calls made inside)."""
        with override(None, **self._overrides):
            yield

    def open(self, bucket: str, ds_uuid: str) -> S3Dataset:
        """Return the core's view of a dataset (one per bucket and UUID and process)."""
        with self._lock:
            found = self._opened.get((bucket, ds_uuid))
            if found is None:
                with self.scope():
                    found = S3Dataset(resolve_config(bucket, self.config_path), ds_uuid)
                self._opened[(bucket, ds_uuid)] = found
            return found

    def beside(self, bucket: str, path: str) -> ObjectBeside:
        """Return the object ``path`` below the bucket's dataset prefix, outside every dataset."""
        with self.scope():
            return ObjectBeside(f"s3://{bucket}", path, self.config_path)

    # -- finding ---------------------------------------------------------------------------------

    def find(self, bucket: str, ref: str, fresh: bool = False) -> Dataset | None:
        """Return the dataset ``ref`` (a UUID or a name) of ``bucket``, None if there is none.

        :param fresh: read the admin metadata now (else a copy up to a few seconds old may do)
        :raises DatasetStateError: if several datasets have that name
        """
        ds_uuid = ref if is_dataset_uuid(ref) else self._uuid_for_name(bucket, ref)
        return None if ds_uuid is None else self._load(bucket, ds_uuid, fresh)

    def _load(self, bucket: str, ds_uuid: str, fresh: bool) -> Dataset | None:
        with self._lock:
            known = self._frozen.get((bucket, ds_uuid))
        if known is not None:
            return known
        s3 = self.open(bucket, ds_uuid)
        admin = s3.admin_metadata(fresh=fresh)
        if admin is None:
            return None
        frozen_at = admin.get("frozen_at")
        return self._keep(
            Dataset(
                bucket=bucket,
                uuid=ds_uuid,
                name=str(admin["name"]),
                frozen=admin.get("type") == "dataset",
                frozen_at=float(frozen_at) if frozen_at is not None else None,
                s3=s3,
            )
        )

    def _keep(self, dataset: Dataset) -> Dataset:
        if dataset.frozen:
            with self._lock:
                self._frozen[(dataset.bucket, dataset.uuid)] = dataset
        return dataset

    def _uuid_for_name(self, bucket: str, name: str) -> str | None:
        with self._lock:
            known = self._names.get((bucket, name))
        if known is not None:
            return known
        with self.scope():
            info = find_dataset(
                f"s3://{bucket}",
                name,
                self.config_path,
                listing=partial(self._listing, bucket),
                salt=self._salt,
            )
        return None if info is None else self._remember_name(bucket, name, info.uuid)

    def _remember_name(self, bucket: str, name: str, ds_uuid: str) -> str:
        with self._lock:
            self._names[(bucket, name)] = ds_uuid
        return ds_uuid

    def _listing(self, bucket: str) -> list[DatasetInfo]:
        # One scan per bucket and process: datasets this plugin creates are found by their
        # deterministic UUID, so the scan only has to know datasets made by other tools.
        with self._lock:
            listing = self._listings.get(bucket)
            if listing is None:
                with self.scope():
                    listing = list_datasets(f"s3://{bucket}", self.config_path)
                self._listings[bucket] = listing
            return listing

    # -- creating --------------------------------------------------------------------------------

    def find_or_create(self, bucket: str, ref: str) -> Dataset:
        """Return the dataset ``ref``, creating a proto dataset of that name if there is none.

        Frozen datasets are returned as they are; callers decide whether that is an error.
        """
        with self._lock:
            found = self.find(bucket, ref, fresh=True)
            if found is not None:
                return found
            if is_dataset_uuid(ref):
                raise errors.ObjectNotFound(
                    f"there is no dataset {ref} in bucket '{bucket}': name output datasets by "
                    "name (dtool://<bucket>/<name>/<relpath>), not by UUID"
                )
            with self.scope():
                info, created = find_or_create_dataset(
                    f"s3://{bucket}",
                    ref,
                    self.config_path,
                    listing=partial(self._listing, bucket),
                    salt=self._salt,
                )
            if created:
                self._logger.info(f"Created proto dataset '{ref}' ({info.uri})")
            self._remember_name(bucket, ref, info.uuid)
            return self._keep(
                Dataset(
                    bucket=bucket,
                    uuid=info.uuid,
                    name=info.name,
                    frozen=info.frozen,
                    frozen_at=info.frozen_at,
                    s3=self.open(bucket, info.uuid),
                )
            )

    # -- items -----------------------------------------------------------------------------------

    def items(self, dataset: Dataset) -> dict[str, ItemStat]:
        """Return every item of the dataset by relpath (proto datasets: as of now)."""
        if dataset.frozen:
            return {
                e.relpath: ItemStat(e.size, e.timestamp, e.md5)
                for e in dataset.s3.entries().values()
            }
        return {
            item.handle: ItemStat(item.size, item.timestamp, item.checksum)
            for item in dataset.s3.items(fresh=True).values()
        }

    def stat(self, dataset: Dataset, relpath: str) -> ItemStat | None:
        """Return one item, None if the dataset has no item of that relpath (one HEAD at most)."""
        if dataset.frozen:
            return self.items(dataset).get(relpath)
        item = dataset.s3.stat(relpath)
        return None if item is None else ItemStat(item.size, item.timestamp, item.checksum)
