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

import json
import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import dtoolcore
import dtoolcore.utils

from dtool_s3_core import errors, override, registry, resolve_config
from dtool_s3_core.client import S3Client
from dtool_s3_core.inventory import Inventory
from dtool_s3_core.keys import (
    UUID_RE,
    KeyLayout,
    identifier,
    normalise_prefix,
    uses_base64_handles,
)

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
    """A dataset found in a bucket."""

    bucket: str
    uuid: str
    name: str
    layout: KeyLayout
    frozen: bool
    frozen_at: float | None

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
        self._clients: dict[str, S3Client] = {}
        self._frozen: dict[tuple[str, str], Dataset] = {}
        self._names: dict[tuple[str, str], str] = {}
        self._listings: dict[str, list[registry.DatasetEntry]] = {}
        self._manifests: dict[tuple[str, str], dict[str, ItemStat]] = {}
        self._inventories: dict[tuple[str, str], Inventory] = {}

    @contextmanager
    def scope(self) -> Iterator[None]:
        """Apply the plugin's settings to dtool_s3_core (and to dtoolcore calls made inside)."""
        with override(None, **self._overrides):
            yield

    def client(self, bucket: str) -> S3Client:
        with self._lock:
            client = self._clients.get(bucket)
            if client is None:
                with self.scope():
                    client = S3Client(resolve_config(bucket, self.config_path))
                self._clients[bucket] = client
            return client

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
        client = self.client(bucket)
        prefix = registry.registered_prefix(client, ds_uuid)
        if prefix is None:
            return None
        layout = KeyLayout(ds_uuid, prefix)
        admin = registry.read_admin_metadata(client, layout, fresh=fresh)
        if admin is None:
            return None
        frozen_at = admin.get("frozen_at")
        dataset = Dataset(
            bucket=bucket,
            uuid=ds_uuid,
            name=str(admin.get("name", "")),
            layout=layout,
            frozen=admin.get("type") == "dataset",
            frozen_at=float(frozen_at) if frozen_at is not None else None,
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
            if not dtoolcore.utils.name_is_valid(ref):
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
        with self.scope():
            proto = dtoolcore.generate_proto_dataset(admin, f"s3://{bucket}", self.config_path)
            try:
                proto.create()
            except errors.DatasetStateError:
                # Another process created it between our check and our write: same UUID, so
                # it is the same dataset and there is nothing left to do.
                pass
            else:
                proto.put_readme("")
                self._logger.info("Created proto dataset '%s' (s3://%s/%s)", name, bucket, ds_uuid)
        self._remember_name(bucket, name, ds_uuid)
        return ds_uuid

    # -- items -----------------------------------------------------------------------------------

    def items(self, dataset: Dataset) -> dict[str, ItemStat]:
        """Return every item of the dataset by relpath (proto datasets: as of now)."""
        if dataset.frozen:
            return self._manifest(dataset)
        inventory = self._inventory(dataset)
        inventory.forget()
        return {
            item.handle: ItemStat(item.size, item.timestamp, item.checksum)
            for item in inventory.items().values()
        }

    def stat(self, dataset: Dataset, relpath: str) -> ItemStat | None:
        """Return one item, None if the dataset has no item of that relpath (one HEAD at most)."""
        if dataset.frozen:
            return self._manifest(dataset).get(relpath)
        head = self.client(dataset.bucket).exists(dataset.layout.item(identifier(relpath)))
        if head is None:
            return None
        return ItemStat(
            size=int(head["ContentLength"]),
            mtime=head["LastModified"].timestamp(),
            md5=head.get("Metadata", {}).get("checksum"),
        )

    def learn(self, dataset: Dataset, relpath: str, md5: str) -> None:
        """Record an item this process uploaded, so listings need no HEAD for it."""
        self._inventory(dataset).learn(relpath, md5)

    def _manifest(self, dataset: Dataset) -> dict[str, ItemStat]:
        key = (dataset.bucket, dataset.uuid)
        with self._lock:
            cached = self._manifests.get(key)
        if cached is not None:
            return cached
        found = self.client(dataset.bucket).get_bytes(dataset.layout.manifest)
        if found is None:
            raise errors.DatasetStateError(
                f"{dataset.describe()} is frozen but has no manifest.json: the dataset is damaged"
            )
        entries = json.loads(found[0]).get("items", {})
        items = {
            str(entry["relpath"]): ItemStat(
                size=int(entry["size_in_bytes"]),
                mtime=float(entry["utc_timestamp"]),
                md5=str(entry["hash"]),
            )
            for entry in entries.values()
        }
        with self._lock:
            self._manifests[key] = items
        return items

    def _inventory(self, dataset: Dataset) -> Inventory:
        key = (dataset.bucket, dataset.uuid)
        with self._lock:
            inventory = self._inventories.get(key)
            if inventory is None:
                client = self.client(dataset.bucket)
                structure: list[dict[str, Any] | None] = []

                def base64_handles() -> bool:
                    if not structure:
                        found = client.get_bytes(dataset.layout.structure)
                        structure.append(json.loads(found[0]) if found else None)
                    return uses_base64_handles(structure[0])

                inventory = Inventory(client, dataset.layout, base64_handles)
                self._inventories[key] = inventory
            return inventory

    def forget(self, dataset: Dataset) -> None:
        """Drop what is cached about a dataset whose state this process just changed."""
        registry.forget_admin(self.client(dataset.bucket), dataset.uuid)
