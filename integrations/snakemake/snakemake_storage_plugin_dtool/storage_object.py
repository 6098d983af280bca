"""``StorageObject``: one query (an item, a directory of items or a freeze marker) for Snakemake.

Snakemake builds a new object for every concrete query, from its main process and from spawned
job processes alike; everything shared lives in the provider's :class:`~.datasets.Datasets`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import dtoolcore
from snakemake_interface_common.exceptions import WorkflowError
from snakemake_interface_storage_plugins.io import (
    IOCacheStorageInterface,
    Mtime,
    get_constant_prefix,
)
from snakemake_interface_storage_plugins.storage_object import (
    StorageObjectGlob,
    StorageObjectRead,
    StorageObjectWrite,
)

from dtool_s3_core import check_dataset_name, errors

from . import freezing, items
from .bookkeeping import Bookkeeping, is_bookkeeping, path_of
from .datasets import Dataset, Datasets, FrozenDatasetError, ItemStat
from .query import MARKER, DtoolQuery, QueryError, has_wildcards, parse_query

if TYPE_CHECKING:
    from .provider import StorageProvider

_USER_ERRORS = (
    errors.DtoolS3Error,
    QueryError,
    dtoolcore.DtoolCoreTypeError,
    dtoolcore.DtoolCoreValueError,
    dtoolcore.DtoolCoreKeyError,
    dtoolcore.DtoolCoreInvalidNameError,
)


@contextmanager
def workflow_errors() -> Iterator[None]:
    """Report our errors as Snakemake WorkflowErrors with their one-line message."""
    try:
        yield
    except _USER_ERRORS as exc:
        raise WorkflowError(str(exc) or type(exc).__name__) from exc


class StorageObject(StorageObjectRead, StorageObjectWrite, StorageObjectGlob):  # type: ignore[misc]
    provider: StorageProvider

    def __post_init__(self) -> None:
        # Invalid queries are reported by Snakemake through is_valid_query(); never raise here.
        try:
            self._parsed: DtoolQuery | None = parse_query(self.query)
        except QueryError:
            self._parsed = None

    @property
    def parsed(self) -> DtoolQuery:
        if self._parsed is None:
            with workflow_errors():
                return parse_query(self.query)
        return self._parsed

    @property
    def _datasets(self) -> Datasets:
        return self.provider.datasets

    def local_suffix(self) -> str:
        if self._parsed is None:
            return str(self.query).split("://", 1)[-1]
        return self._parsed.local_suffix

    def get_inventory_parent(self) -> str:
        return str(self.cache_key(self.parsed.dataset_suffix))

    def cleanup(self) -> None:
        """Nothing to clean: the local copy is Snakemake's to delete."""

    def _bookkeeping(self) -> Bookkeeping | None:
        """Return the object beside the dataset if the query is Snakemake's own, else None."""
        query = self.parsed
        if not is_bookkeeping(query):
            return None
        # A UUID passes too: it is a valid dtool name.
        check_dataset_name(query.dataset)
        return Bookkeeping(self._datasets.beside(query.bucket, path_of(query)))

    def _dataset(self, fresh: bool = False) -> Dataset | None:
        query = self.parsed
        return self._datasets.find(query.bucket, query.dataset, fresh=fresh)

    # -- reading ---------------------------------------------------------------------------------

    async def inventory(self, cache: IOCacheStorageInterface) -> None:
        """Fill Snakemake's cache for every item of the dataset from one manifest or listing."""
        parent = self.get_inventory_parent()
        has_inventory: set[str] = cache.exists_in_storage.has_inventory
        if parent in has_inventory or has_wildcards(self.parsed.dataset_suffix):
            return
        with workflow_errors():
            found = await asyncio.to_thread(self._snapshot)
        if found is not None:
            dataset, contents = found
            self._fill(cache, dataset, contents)
        has_inventory.add(parent)

    def _snapshot(self) -> tuple[Dataset, dict[str, ItemStat]] | None:
        dataset = self._dataset()
        if dataset is None:
            return None
        return dataset, self._datasets.items(dataset)

    def _fill(
        self, cache: IOCacheStorageInterface, dataset: Dataset, contents: dict[str, ItemStat]
    ) -> None:
        query = self.parsed
        directories: dict[str, float] = {}
        for relpath, stat in contents.items():
            key = self.cache_key(f"{query.dataset_suffix}/{relpath}")
            cache.exists_in_storage[key] = True
            cache.mtime[key] = Mtime(storage=stat.mtime)
            cache.size[key] = stat.size
            parts = relpath.split("/")
            for depth in range(1, len(parts)):
                directory = "/".join(parts[:depth])
                directories[directory] = max(directories.get(directory, stat.mtime), stat.mtime)
        for directory, mtime in directories.items():
            key = self.cache_key(f"{query.dataset_suffix}/{directory}")
            cache.exists_in_storage[key] = True
            cache.mtime[key] = Mtime(storage=mtime)
            cache.size[key] = 0
        if dataset.frozen and dataset.frozen_at is not None:
            key = self.cache_key(f"{query.dataset_suffix}/{MARKER}")
            cache.exists_in_storage[key] = True
            cache.mtime[key] = Mtime(storage=dataset.frozen_at)
            cache.size[key] = 0

    def _stat(self) -> items.PathStat | None:
        bookkeeping = self._bookkeeping()
        if bookkeeping is not None:
            return bookkeeping.stat()
        # Another process (a cluster job) may have frozen the dataset a moment ago: the marker
        # is asked about right after that job ends, so a cached proto state would be wrong.
        dataset = self._dataset(fresh=self.parsed.is_marker)
        if dataset is None:
            return None
        if self.parsed.is_marker:
            if not dataset.frozen or dataset.frozen_at is None:
                return None
            return items.PathStat(False, 0, dataset.frozen_at, None, 0)
        return items.stat_path(self._datasets, dataset, self.parsed.relpath)

    def _existing(self) -> items.PathStat:
        stat = self._stat()
        if stat is None:
            raise errors.ObjectNotFound(f"{self.query} does not exist")
        return stat

    def exists(self) -> bool:
        with workflow_errors():
            return self._stat() is not None

    def mtime(self) -> float:
        with workflow_errors():
            return self._existing().mtime

    def size(self) -> int:
        with workflow_errors():
            return self._existing().size

    def local_footprint(self) -> int:
        with workflow_errors():
            return self._existing().footprint

    def checksum(self) -> str | None:
        with workflow_errors():
            md5 = self._existing().md5
        return f"md5:{md5}" if md5 else None

    def retrieve_object(self) -> None:
        with workflow_errors():
            bookkeeping = self._bookkeeping()
            if bookkeeping is not None:
                bookkeeping.retrieve(self.local_path())
                return
            dataset = self._dataset()
            if dataset is None:
                raise errors.ObjectNotFound(f"{self.query}: there is no such dataset")
            target = self.local_path()
            if self.parsed.is_marker:
                if not dataset.frozen:
                    raise errors.DatasetStateError(f"{dataset.describe()} is not frozen yet")
                target.write_text(freezing.marker_document(dataset), encoding="utf-8")
                return
            items.retrieve(self._datasets, dataset, self.parsed.relpath, target)

    # -- writing ---------------------------------------------------------------------------------

    def store_object(self) -> None:
        with workflow_errors():
            query = self.parsed
            bookkeeping = self._bookkeeping()
            if bookkeeping is not None:
                bookkeeping.store(self.local_path())
                return
            dataset = self._datasets.find_or_create(query.bucket, query.dataset)
            if query.is_marker:
                readme = freezing.readme_for(self.local_path(), query.bucket, query.dataset)
                if not dataset.frozen:
                    frozen = freezing.freeze(self._datasets, dataset, readme)
                    self.provider.logger.info(f"Froze {frozen.describe()}")
                return
            if dataset.frozen:
                raise FrozenDatasetError(dataset)
            items.store(dataset, query.relpath, self.local_path())

    def remove(self) -> None:
        with workflow_errors():
            bookkeeping = self._bookkeeping()
            if bookkeeping is not None:
                bookkeeping.remove()
                return
        if not self.retrieve:
            # Snakemake 9 calls this for retrieve=False *inputs* when it only means to drop their
            # local copy (e.g. the items listed as inputs of a freeze rule); it cannot be told
            # apart from a real removal, so objects handed to jobs as queries are never deleted.
            return
        with workflow_errors():
            dataset = self._dataset(fresh=True)
            if dataset is None:
                return
            if dataset.frozen:
                raise FrozenDatasetError(dataset)
            if not self.parsed.is_marker:
                items.remove(self._datasets, dataset, self.parsed.relpath)

    # -- glob_wildcards --------------------------------------------------------------------------

    def list_candidate_matches(self) -> Iterable[str]:
        """Return the queries of the dataset's items that may match the query's pattern."""
        query = self.parsed
        if has_wildcards(query.dataset_suffix):
            raise WorkflowError(
                f"glob_wildcards() needs a fixed bucket and dataset, got {self.query}"
            )
        with workflow_errors():
            dataset = self._dataset()
            if dataset is None:
                return []
            prefix = get_constant_prefix(query.relpath)
            return [
                query.item_query(relpath)
                for relpath in sorted(self._datasets.items(dataset))
                if relpath.startswith(prefix)
            ]

    def __repr__(self) -> str:
        return f"StorageObject({self.query!r})"
