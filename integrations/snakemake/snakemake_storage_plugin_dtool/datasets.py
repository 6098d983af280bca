"""Finding, creating and describing the datasets that queries name, with per-process caches.

Frozen datasets never change, so their admin metadata and manifest are read once per process and
kept. Proto datasets change while the workflow runs, so their state is read again when asked.

Output datasets are created with a deterministic UUID, ``uuid5(bucket, prefix, name)``. Every
process that writes into the dataset "results" of a bucket (local jobs, cluster jobs, several
Snakemake invocations) therefore creates or finds the *same* dataset: creation is idempotent and
race-free without locks, and finding it is one GET instead of a scan of the bucket. Datasets made
by other tools (random UUIDs) are still found by name, by scanning the bucket's registrations.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import dtoolcore

from dtool_s3_core import S3Dataset, errors, override, resolve_config
from dtool_s3_core._dataset import registry
from dtool_s3_core._format.keys import UUID_RE, normalise_prefix
from dtool_s3_core._format.validate import name_problem
from dtool_s3_core._s3.client import S3Client

#: Namespace of the deterministic dataset UUIDs (fixed forever: changing it orphans datasets).
NAMESPACE = uuid.UUID("0c8f3b96-159c-4e48-9033-f76811e36434")


def deterministic_uuid(bucket: str, prefix: str, name: str) -> str:
    """Return the UUID the plugin gives the dataset ``name`` under ``prefix`` in ``bucket``."""
    return str(uuid.uuid5(NAMESPACE, f"s3://{bucket}/{prefix}{name}"))


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
        self, overrides: dict[str, Any], config_path: str | None, logger: logging.Logger
    ) -> None:
        self._overrides = overrides
        self._logger = logger
        self.config_path = config_path
        self._lock = threading.RLock()
        self._opened: dict[tuple[str, str], S3Dataset] = {}
        self._frozen: dict[tuple[str, str], Dataset] = {}
        self._names: dict[tuple[str, str], str] = {}
        self._listings: dict[str, list[registry.DatasetEntry]] = {}

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

    def client(self, bucket: str) -> S3Client:
        with self.scope():
            return S3Client(resolve_config(bucket, self.config_path))

    def prefix(self, bucket: str) -> str:
        return normalise_prefix(self.client(bucket).config.dataset_prefix)

    # -- finding ---------------------------------------------------------------------------------

    def find(self, bucket: str, ref: str, fresh: bool = False) -> Dataset | None:
        """Return the dataset ``ref`` (a UUID or a name) of ``bucket``, None if there is none.

        :param fresh: read the admin metadata now (else a copy up to a few seconds old may do)
        :raises DatasetStateError: if several datasets have that name
        """
        ds_uuid = ref if UUID_RE.match(ref) else self._uuid_for_name(bucket, ref)
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
        dataset = Dataset(
            bucket=bucket,
            uuid=ds_uuid,
            name=str(admin["name"]),
            frozen=admin.get("type") == "dataset",
            frozen_at=float(frozen_at) if frozen_at is not None else None,
            s3=s3,
        )
        if dataset.frozen:
            with self._lock:
                self._frozen[(bucket, ds_uuid)] = dataset
        return dataset

    def _uuid_for_name(self, bucket: str, name: str) -> str | None:
        with self._lock:
            known = self._names.get((bucket, name))
        if known is not None:
            return known
        candidate = deterministic_uuid(bucket, self.prefix(bucket), name)
        found = self._load(bucket, candidate, fresh=False)
        if found is not None and found.name == name:
            return self._remember_name(bucket, name, candidate)
        matches = [
            entry.uuid
            for entry in self._listing(bucket)
            if entry.admin_metadata is not None and entry.admin_metadata.get("name") == name
        ]
        if len(matches) > 1:
            raise errors.DatasetStateError(
                f"{len(matches)} datasets are named '{name}' in bucket '{bucket}': name the one "
                f"you mean by its UUID, e.g. dtool://{bucket}/{matches[0]}/..."
            )
        return self._remember_name(bucket, name, matches[0]) if matches else None

    def _remember_name(self, bucket: str, name: str, ds_uuid: str) -> str:
        with self._lock:
            self._names[(bucket, name)] = ds_uuid
        return ds_uuid

    def _listing(self, bucket: str) -> list[registry.DatasetEntry]:
        # One scan per bucket and process: datasets this plugin creates are found by their
        # deterministic UUID, so the scan only has to know datasets made by other tools.
        with self._lock:
            listing = self._listings.get(bucket)
            if listing is None:
                listing = registry.list_datasets(self.client(bucket), self.prefix(bucket))
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
            if UUID_RE.match(ref):
                raise errors.ObjectNotFound(
                    f"there is no dataset {ref} in bucket '{bucket}': name output datasets by "
                    "name (dtool://<bucket>/<name>/<relpath>), not by UUID"
                )
            if name_problem(ref) is not None:
                raise errors.ConfigurationError(
                    f"invalid dataset name '{ref}': use letters, digits, '-', '_' and '.' "
                    "(at most 80)"
                )
            ds_uuid = self._create(bucket, ref)
            created = self._load(bucket, ds_uuid, fresh=True)
            if created is None:
                raise errors.DatasetStateError(
                    f"dataset '{ref}' (s3://{bucket}/{ds_uuid}) vanished right after creation"
                )
            return created

    def _create(self, bucket: str, name: str) -> str:
        ds_uuid = deterministic_uuid(bucket, self.prefix(bucket), name)
        admin = dtoolcore.generate_admin_metadata(name)
        admin["uuid"] = ds_uuid
        try:
            self.open(bucket, ds_uuid).create_proto(admin)
        except errors.DatasetStateError:
            # Another process created it between our check and our write: same UUID, so
            # it is the same dataset and there is nothing left to do.
            pass
        else:
            self._logger.info(f"Created proto dataset '{name}' (s3://{bucket}/{ds_uuid})")
        self._remember_name(bucket, name, ds_uuid)
        return ds_uuid

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

    def forget(self, dataset: Dataset) -> None:
        """Drop what is cached about a dataset whose state this process just changed."""
        registry.forget_admin(dataset.s3.client, dataset.uuid)
