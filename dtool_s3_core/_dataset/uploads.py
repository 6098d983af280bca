"""Uploading items: one at a time, many at once, or queued in the background behind a barrier.

:class:`TaskQueue` runs uploads with a bounded window, so dtoolcore's item-by-item ``put_item``
calls overlap; :meth:`Uploads.wait_uploads` is the barrier that raises every failure, and
:meth:`Uploads.confirm_uploads` makes sure no item was lost to another process's freeze. A
``KeyboardInterrupt`` while the caller waits for the queue stops it (:meth:`Uploads.interrupt`).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from .. import errors
from .._format import validate
from .._format.keys import identifier
from .._format.manifest import Entry, item_metadata
from .._s3.flow import ByteBudget, OnBytes, memory_budget
from .._s3.transfer import Uploaded, upload_stream
from ..config import S3Config
from .localfiles import open_local
from .objects import DatasetObjects

#: How long a writer waits for another process's freeze to finish before it gives up.
FREEZE_WAIT_SECONDS = 120.0


class Uploads(DatasetObjects):
    """A dataset's item uploads and the barriers that report their failures."""

    def __init__(self, config: S3Config, uuid: str) -> None:
        super().__init__(config, uuid)
        self._uploads: TaskQueue | None = None
        self._unconfirmed: dict[str, str] = {}
        self._memory = memory_budget(config)
        self._queued = ByteBudget(config.max_concurrency * config.part_size)

    def upload(self, path: str | Path, relpath: str, on_bytes: OnBytes | None = None) -> Uploaded:
        """Upload a local file as the item ``relpath`` (Content-MD5, MD5 in the metadata).

        :param on_bytes: called with each number of bytes sent (progress)
        """
        validate.check_relpath(relpath)
        stream = open_local(path)
        with stream:
            result = upload_stream(
                self.client,
                self.layout.item(identifier(relpath)),
                stream,
                lambda md5: item_metadata(relpath, md5),
                self._memory,
                on_bytes=on_bytes,
            )
        self.inventory.learn(relpath, result.md5)
        with self._lock:
            self._unconfirmed[relpath] = result.md5
        return result

    def queue_upload(
        self, path: str | Path, relpath: str, track: Callable[[Uploads], None]
    ) -> None:
        """Upload in the background (bounded window); :meth:`wait_uploads` is the barrier.

        :param track: called once with this dataset, whose :meth:`drain` must run before exit
        """
        validate.check_relpath(relpath)
        self.check_not_interrupted()
        with open_local(path) as stream:
            size = os.fstat(stream.fileno()).st_size
        with self._lock:
            if self._uploads is None:
                workers = self.config.max_concurrency
                self._uploads = TaskQueue(workers, 4 * workers, "dtool-s3-put")
                track(self)
            queue = self._uploads
        # The caller's progress counts an item once this returns: holding it back while the
        # queued bytes are over the window keeps that count close to the bytes really sent.
        try:
            self._queued.acquire(size)
            try:
                queue.submit(self._upload_queued, path, relpath, size)
            except BaseException:
                self._queued.release(size)
                raise
        except KeyboardInterrupt:
            self.interrupt()
            raise

    def _upload_queued(self, path: str | Path, relpath: str, size: int) -> Uploaded:
        try:
            return self.upload(path, relpath)
        finally:
            self._queued.release(size)

    def upload_many(self, files: Mapping[str, Path]) -> None:
        """Upload {relpath: file} concurrently and confirm them (see :meth:`confirm_uploads`)."""
        for relpath in files:
            validate.check_relpath(relpath)
        self.run_all([partial(self.upload, p, r) for r, p in files.items()])
        self.confirm_uploads()

    def drain(self) -> None:
        """Wait for queued uploads and confirm them (the barrier at exit).

        After an interrupt there is nothing left to wait for, and the ``KeyboardInterrupt`` has
        told the caller already.
        """
        if not self.client.cancel.is_set():
            self.confirm_uploads()

    def wait_uploads(self) -> None:
        """Barrier: wait for queued uploads and raise the first failure.

        :raises DatasetStateError: if the uploads were interrupted (see :meth:`interrupt`)
        """
        queue = self._uploads
        if queue is not None:
            try:
                queue.drain()
            except KeyboardInterrupt:
                self.interrupt()
                raise
        self.check_not_interrupted()

    def interrupt(self) -> None:
        """Stop the transfers (see :meth:`.DatasetObjects.interrupt`) and the upload queue: the
        uploads not started are dropped, and this returns once the others have stopped."""
        super().interrupt()
        queue = self._uploads
        if queue is not None:
            queue.cancel()

    def confirm_uploads(self) -> None:
        """Make sure items this process uploaded were not lost to a concurrent freeze.

        A freezer first writes its freeze marker, then lists the items. An upload that finished
        before the marker appeared is therefore in the listing; one that did not may be missing
        from the manifest, so its writer waits for the freeze and checks the manifest.
        """
        self.wait_uploads()
        with self._lock:
            pending, self._unconfirmed = self._unconfirmed, {}
        if not pending:
            return
        admin = self.require_admin(fresh=True)
        if admin.get("type") != "dataset" and self.client.exists(self.layout.freeze_marker) is None:
            return
        admin = self._wait_for_freeze(admin)
        entries = self.entries()
        lost = [rel for rel, md5 in pending.items() if _md5_of(entries, rel) != md5]
        if lost:
            raise errors.DatasetStateError(
                f"{self.uri} was frozen by another process while {len(lost)} item(s) were being "
                f"added (e.g. {validate.shown(lost[0])}): they are not in the frozen dataset; add "
                "them to a new dataset"
            )

    def _wait_for_freeze(self, admin: dict[str, Any]) -> dict[str, Any]:
        deadline = time.monotonic() + FREEZE_WAIT_SECONDS
        while admin.get("type") != "dataset":
            if time.monotonic() > deadline:
                raise errors.DatasetStateError(
                    f"{self.uri} is being frozen by another process (marker "
                    f"{self.where(self.layout.freeze_marker)}); if no freeze is running, freeze "
                    "the dataset again or delete the marker"
                )
            time.sleep(1.0)
            admin = self.require_admin(fresh=True)
        with self._lock:
            self._entries = None
        return admin

    def close_uploads(self) -> None:
        """Wait for queued uploads and stop their threads."""
        self.wait_uploads()
        if self._uploads is not None:
            self._uploads.close()


class TaskQueue:
    """Run callables on a thread pool with at most ``window`` pending; collect every failure."""

    def __init__(self, workers: int, window: int, name: str) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._slots = threading.BoundedSemaphore(window)
        self._lock = threading.Lock()
        self._pending: set[Future[Any]] = set()
        self._failures: list[BaseException] = []

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """Queue ``fn(*args)``; blocks while the window is full; fails fast after a failure."""
        self._raise_failures()
        self._slots.acquire()
        future = self._pool.submit(fn, *args)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._done)
        return future

    def _done(self, future: Future[Any]) -> None:
        with self._lock:
            self._pending.discard(future)
            exc = None if future.cancelled() else future.exception()
            if exc is not None:
                self._failures.append(exc)
        self._slots.release()

    def drain(self) -> None:
        """Wait for every queued task; raise the first failure, counting the others."""
        while True:
            with self._lock:
                pending = list(self._pending)
            if not pending:
                break
            for future in pending:
                future.exception()
        self._raise_failures()

    def _raise_failures(self) -> None:
        with self._lock:
            failures, self._failures = self._failures, []
        if not failures:
            return
        first = failures[0]
        if len(failures) > 1 and isinstance(first, errors.DtoolS3Error):
            more = f"{first} (and {len(failures) - 1} more transfers failed)"
            raise type(first)(more) from first
        raise first

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)

    def cancel(self) -> None:
        """Drop the tasks not started and wait for the running ones, forgetting all failures.

        The running tasks are expected to stop early (their transfers were cancelled first).
        """
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            self._failures.clear()


def _md5_of(entries: Mapping[str, Entry], relpath: str) -> str | None:
    entry = entries.get(identifier(relpath))
    return entry.md5 if entry is not None else None
