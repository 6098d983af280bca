"""Downloading items: verified against the manifest, into a target or the verified cache.

Every download is checked against the manifest of a frozen dataset, or against the item's own
metadata in a proto dataset, while it streams (:func:`.._s3.transfer.download`); the cache
(:mod:`.cache`) serves an entry only if its MD5 is still the expected one.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from .. import errors
from .._format import validate
from .._format.keys import IDENTIFIER_RE
from .._s3.flow import OnBytes
from .._s3.transfer import CACHE_ADVICE, download
from ..config import S3Config
from . import cache
from .objects import DatasetObjects


class Downloads(DatasetObjects):
    """A dataset's item downloads, to a path or through the verified cache."""

    def __init__(self, config: S3Config, uuid: str) -> None:
        super().__init__(config, uuid)
        self._downloads: dict[str, Future[Path]] = {}
        self._download_pool: ThreadPoolExecutor | None = None

    def download_to(
        self,
        ident: str,
        target: Path,
        on_bytes: OnBytes | None = None,
        advice: str = CACHE_ADVICE,
    ) -> Path:
        """Download an item to ``target``, verified against the manifest (or its metadata).

        :param on_bytes: called with each number of bytes received (progress)
        :param advice: what else to do about a full disk (see :func:`.._s3.transfer.download`)
        """
        _, md5, size = self._expected(ident)
        key = self.layout.item(ident)
        return download(self.client, key, target, md5, size, on_bytes=on_bytes, advice=advice)

    def _expected(self, ident: str) -> tuple[str, str | None, int | None]:
        if not IDENTIFIER_RE.match(ident):
            raise errors.ObjectNotFound(
                f"no item {validate.shown(ident)} in {self.uri}: identifiers are 40 hex digits"
            )
        entries = self.frozen_entries()
        if entries is not None:
            entry = entries.get(ident)
            if entry is None:
                raise errors.ObjectNotFound(f"item not found: {self.uri}/data/{ident}")
            return entry.relpath, entry.md5, entry.size
        key = self.layout.item(ident)
        head = self.client.exists(key)
        if head is None:
            raise self.client.missing(key, "item")
        item = self.inventory.from_head(ident, head)
        return item.handle, item.checksum, item.size

    def cached(self, ident: str) -> Path:
        """Return a local copy of an item from the verified cache, downloading it if needed."""
        relpath, md5, size = self._expected(ident)
        directory = cache.dataset_directory(self.config, self.uuid)
        cache.sweep(directory)
        target = cache.entry_path(directory, ident, relpath)
        if md5 is not None and cache.is_valid(target, md5, size):
            return target
        # Private: the cache may sit in a home directory others can read, and these bytes were
        # guarded by the bucket's credentials (#20).
        download(self.client, self.layout.item(ident), target, md5, size, private=True)
        if md5 is not None:
            cache.remember(target, md5)
        return target

    def prefetch(self, ident: str) -> Future[Path]:
        """Start (or join) the cached download of an item in the background."""
        self.check_not_interrupted()
        with self._lock:
            future = self._downloads.get(ident)
            if future is not None and not (future.done() and future.exception()):
                return future
            if self._download_pool is None:
                self._download_pool = ThreadPoolExecutor(
                    max_workers=self.config.max_concurrency, thread_name_prefix="dtool-s3-get"
                )
            future = self._download_pool.submit(self.cached, ident)
            self._downloads[ident] = future
            return future

    def interrupt(self) -> None:
        """Stop the transfers (see :meth:`.DatasetObjects.interrupt`) and the downloads ahead: the
        ones not started are dropped, and this returns once the others have stopped."""
        super().interrupt()
        pool = self._download_pool
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def close_downloads(self) -> None:
        """Stop the background download threads once their downloads are done."""
        if self._download_pool is not None:
            self._download_pool.shutdown(wait=True)
