"""``S3Dataset``: one dataset in one bucket, read and written in dtool-s3 0.14.1's format.

This is the one place that knows what a dataset's objects mean. The dtoolcore broker, the copy
engine, the Python API and the integrations all go through it, and everything it reads from the
bucket is checked (:mod:`.._format.validate`) before it becomes a path, a key or a claim of
integrity: a damaged or hostile object is refused with one line naming the object.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from .. import errors
from .._format import validate
from .._format.keys import (
    DTOOL_README_TXT,
    IDENTIFIER_RE,
    UUID_RE,
    KeyLayout,
    encode_handle,
    identifier,
    json_names,
    normalise_prefix,
    parse_fragment_key,
    structure_parameters,
    uses_base64_handles,
)
from .._format.validate import Entry, Invalid
from .._s3.client import S3Client
from .._s3.transfer import (
    ByteBudget,
    OnBytes,
    TaskQueue,
    Uploaded,
    download,
    memory_budget,
    upload_stream,
)
from ..config import S3Config
from . import cache, registry
from .inventory import Inventory, Item

logger = logging.getLogger(__name__)
T = TypeVar("T")
#: How long a writer waits for another process's freeze to finish before it gives up.
FREEZE_WAIT_SECONDS = 120.0


def item_metadata(relpath: str, md5: str) -> dict[str, str]:
    """The user metadata of an item object: base64 handle and MD5 (what dtool-s3 reads)."""
    return {"handle": encode_handle(relpath), "checksum": md5}


class S3Dataset:
    """One dataset (proto or frozen) of a bucket; thread-safe; caches what cannot change."""

    def __init__(self, config: S3Config, uuid: str) -> None:
        self.config = config
        self.bucket = config.bucket
        self.uuid = uuid
        self.client = S3Client(config)
        self._lock = threading.RLock()
        self._layout: KeyLayout | None = None
        self._structure: dict[str, Any] | None = None
        self._inventory: Inventory | None = None
        self._entries: dict[str, Entry] | None = None
        self._fragments: dict[str, dict[str, Any]] | None = None
        self._uploads: TaskQueue | None = None
        self._unconfirmed: dict[str, str] = {}
        self._downloads: dict[str, Future[Path]] = {}
        self._download_pool: ThreadPoolExecutor | None = None
        self._memory = memory_budget(config)
        self._queued = ByteBudget(config.max_concurrency * config.part_size)

    def __repr__(self) -> str:
        return f"S3Dataset('{self.uri}')"

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.uuid}"

    @property
    def is_uuid(self) -> bool:
        return bool(UUID_RE.match(self.uuid))

    def where(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _checked(self, key: str, read: Callable[[], T]) -> T:
        try:
            return read()
        except Invalid as exc:
            raise errors.damaged(self.where(key), str(exc)) from exc

    # -- layout and admin metadata -----------------------------------------------------------------

    @property
    def layout(self) -> KeyLayout:
        """The dataset's keys: its registered prefix, else the configured one (not created yet)."""
        with self._lock:
            if self._layout is None:
                prefix = (
                    registry.registered_prefix(self.client, self.uuid) if self.is_uuid else None
                )
                if prefix is None:
                    return KeyLayout(self.uuid, normalise_prefix(self.config.dataset_prefix))
                self._layout = KeyLayout(self.uuid, prefix)
            return self._layout

    def admin_metadata(self, fresh: bool = False) -> dict[str, Any] | None:
        """Return the checked admin metadata, None if there is no dataset here."""
        if not self.is_uuid:
            return None
        layout = self.layout
        admin = registry.read_admin_metadata(self.client, layout, fresh=fresh)
        if admin is not None:
            self._checked(layout.admin_metadata, lambda: validate.check_admin(admin, self.uuid))
        return admin

    def require_admin(self, fresh: bool = False) -> dict[str, Any]:
        admin = self.admin_metadata(fresh)
        if admin is None:
            raise self.client.missing(self.layout.admin_metadata, "dataset")
        return admin

    def put_admin_metadata(self, admin: Mapping[str, Any]) -> None:
        registry.write_admin_metadata(self.client, self.layout, dict(admin))

    def create(self, checked: bool = False) -> None:
        """Register the dataset (``dtool-<uuid>``); refuse if one already exists here.

        :param checked: the caller has just seen that there is no dataset here
        """
        if not self.is_uuid:
            raise errors.ConfigurationError(f"not a dataset URI: {self.uri}")
        existing = None if checked else registry.registered_prefix(self.client, self.uuid)
        layout = KeyLayout(self.uuid, existing if existing is not None else self.layout.prefix)
        if not checked and registry.read_admin_metadata(self.client, layout, fresh=True):
            raise errors.DatasetStateError(
                f"a dataset already exists at {self.uri}: use 'dtool cp --resume' to finish an "
                "interrupted copy, or delete it first"
            )
        self.client.put_bytes(layout.registration_key, layout.prefix.encode("utf-8"))
        registry.remember_prefix(self.client, self.uuid, layout.prefix)
        with self._lock:
            self._layout = layout

    def create_proto(self, admin: Mapping[str, Any], checked: bool = False) -> None:
        """Create a proto dataset with these admin metadata (what ``ProtoDataSet.create`` does).

        :param checked: the caller has just seen that there is no dataset here
        """
        self.create(checked)
        layout = self.layout
        structure = json.dumps(structure_parameters(self.uuid), indent=2, sort_keys=True)
        self.put_text(layout.structure, structure)
        self.put_text(layout.dtool_readme, DTOOL_README_TXT)
        self.put_admin_metadata(admin)
        self.put_text(layout.readme, "")

    # -- small objects -----------------------------------------------------------------------------

    def read(self, key: str, kind: str) -> bytes | None:
        """Return an object's bytes (None if missing), refusing one larger than its kind allows."""
        found = self.client.get_bytes(key, limit=validate.LIMITS[kind])
        if found is None:
            return None
        if len(found[0]) > validate.LIMITS[kind]:
            raise errors.damaged(
                self.where(key),
                f"is over the limit of {validate.LIMITS[kind]} bytes for this object",
            )
        return found[0]

    def text(self, key: str, kind: str = "readme") -> str:
        body = self.read(key, kind)
        if body is None:
            raise self.client.missing(key, "dataset object")
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise errors.DatasetStateError(
                f"{self.where(key)} is not UTF-8 text; rewrite it as UTF-8"
            ) from exc

    def json(self, key: str, kind: str) -> Any:
        body = self.read(key, kind)
        if body is None:
            raise self.client.missing(key, "dataset object")
        return self._checked(key, lambda: validate.parse_json(body, kind))

    def put_text(self, key: str, text: str) -> None:
        self.client.put_bytes(key, text.encode("utf-8"))

    def delete(self, key: str) -> None:
        self.client.call("delete_object", key)

    def structure(self) -> dict[str, Any] | None:
        with self._lock:
            if self._structure is None:
                key = self.layout.structure
                body = self.read(key, "structure")
                parsed = {} if body is None else self._checked(key, lambda: _object(body))
                self._structure = parsed
            return self._structure or None

    def base64_handles(self) -> bool:
        return uses_base64_handles(self.structure())

    def _names(self, prefix: str) -> list[str]:
        return [info.key for info in self.client.list_objects(prefix)]

    def _valid_names(self, kind: str, names: list[str], key_of: Callable[[str], str]) -> list[str]:
        for name in names:
            problem = validate.name_problem(name)
            if problem is not None:
                raise errors.damaged(
                    self.where(key_of(name)),
                    f"names {kind} {validate.shown(name)}, which {problem}",
                )
        return names

    def overlay_names(self) -> list[str]:
        prefix = self.layout.overlays_prefix
        names = json_names(self._names(prefix), prefix)
        return self._valid_names("an overlay", names, self.layout.overlay)

    def annotation_names(self) -> list[str]:
        prefix = self.layout.annotations_prefix
        names = json_names(self._names(prefix), prefix)
        return self._valid_names("an annotation", names, self.layout.annotation)

    def tags(self) -> list[str]:
        prefix = self.layout.tags_prefix
        names = [key[len(prefix) :] for key in self._names(prefix)]
        return self._valid_names("a tag", names, self.layout.tag)

    def overlay(self, name: str) -> dict[str, Any]:
        key = self.layout.overlay(name)
        value = self.json(key, "overlay")
        idents = set(self.entries())
        return self._checked(key, lambda: validate.check_overlay(value, idents))

    def annotation(self, name: str) -> Any:
        return self.json(self.layout.annotation(name), "annotation")

    def readme(self) -> str:
        return self.text(self.layout.readme)

    # -- manifest ----------------------------------------------------------------------------------

    def entries(self) -> dict[str, Entry]:
        """Return the checked manifest items of a frozen dataset by identifier."""
        with self._lock:
            if self._entries is None:
                key = self.layout.manifest
                manifest = self.json(key, "manifest")
                self._entries = self._checked(key, lambda: validate.parse_manifest(manifest))
            return self._entries

    def frozen_entries(self) -> dict[str, Entry] | None:
        """The manifest items if the dataset is frozen, else None."""
        if self._entries is None:
            admin = self.admin_metadata()
            if admin is None or admin.get("type") != "dataset":
                return None
        return self.entries()

    def manifest(self) -> dict[str, Any]:
        """The manifest as dtoolcore reads it, rebuilt from the checked items."""
        return manifest_document({i: e.as_dict() for i, e in self.entries().items()})

    def put_manifest(self, manifest: Mapping[str, Any]) -> None:
        body = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8")
        self.client.put_bytes(self.layout.manifest, body)
        with self._lock:
            self._entries = None

    # -- item stats --------------------------------------------------------------------------------

    @property
    def inventory(self) -> Inventory:
        with self._lock:
            if self._inventory is None:
                self._inventory = Inventory(self.client, self.layout, self.base64_handles)
                for entry in (self.frozen_entries() or {}).values():
                    self._inventory.learn(entry.relpath, entry.md5)
            return self._inventory

    def items(self, fresh: bool = False) -> dict[str, Item]:
        """Every stored item by identifier (one listing, HEADs only for unknown items)."""
        self.wait_uploads()
        if fresh:
            self.inventory.forget()
        return self.inventory.items()

    def stat(self, relpath: str) -> Item | None:
        """One item by relpath as stored now, None if there is none (one HEAD)."""
        ident = identifier(relpath)
        head = self.client.exists(self.layout.item(ident))
        return None if head is None else self.inventory.from_head(ident, head)

    # -- uploads -----------------------------------------------------------------------------------

    def upload(self, path: str | Path, relpath: str, on_bytes: OnBytes | None = None) -> Uploaded:
        """Upload a local file as the item ``relpath`` (Content-MD5, MD5 in the metadata).

        :param on_bytes: called with each number of bytes sent (progress)
        """
        validate.check_relpath(relpath)
        stream = _open_local(path)
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
        self, path: str | Path, relpath: str, track: Callable[[S3Dataset], None]
    ) -> None:
        """Upload in the background (bounded window); :meth:`wait_uploads` is the barrier.

        :param track: called once with this dataset, whose :meth:`drain` must run before exit
        """
        validate.check_relpath(relpath)
        with _open_local(path) as stream:
            size = os.fstat(stream.fileno()).st_size
        with self._lock:
            if self._uploads is None:
                workers = self.config.max_concurrency
                self._uploads = TaskQueue(workers, 4 * workers, "dtool-s3-put")
                track(self)
            queue = self._uploads
        # The caller's progress counts an item once this returns: holding it back while the
        # queued bytes are over the window keeps that count close to the bytes really sent.
        self._queued.acquire(size)
        try:
            queue.submit(self._upload_queued, path, relpath, size)
        except BaseException:
            self._queued.release(size)
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
        """Wait for queued uploads and confirm them (the barrier at exit)."""
        self.confirm_uploads()

    def wait_uploads(self) -> None:
        """Barrier: wait for queued uploads and raise the first failure."""
        queue = self._uploads
        if queue is not None:
            queue.drain()

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

    # -- downloads ---------------------------------------------------------------------------------

    def download_to(self, ident: str, target: Path, on_bytes: OnBytes | None = None) -> Path:
        """Download an item to ``target``, verified against the manifest (or its metadata).

        :param on_bytes: called with each number of bytes received (progress)
        """
        _, md5, size = self._expected(ident)
        return download(self.client, self.layout.item(ident), target, md5, size, on_bytes=on_bytes)

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
        download(self.client, self.layout.item(ident), target, md5, size)
        if md5 is not None:
            cache.remember(target, md5)
        return target

    def prefetch(self, ident: str) -> Future[Path]:
        """Start (or join) the cached download of an item in the background."""
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

    # -- item metadata -----------------------------------------------------------------------------

    def put_item_metadata(self, relpath: str, key: str, value: Any) -> None:
        validate.check_relpath(relpath)
        problem = validate.name_problem(key)
        if problem is not None:
            raise errors.ConfigurationError(f"item metadata key {validate.shown(key)} {problem}")
        body = json.dumps(value).encode("utf-8")
        self.client.put_bytes(self.layout.fragment(identifier(relpath), key), body)
        with self._lock:
            self._fragments = None

    def fragments(self) -> dict[str, dict[str, Any]]:
        """Return {metadata key: {identifier: value}} of a proto dataset (one listing + GETs)."""
        with self._lock:
            if self._fragments is not None:
                return self._fragments
        prefix = self.layout.fragments_prefix
        parsed = [(k, parse_fragment_key(k[len(prefix) :])) for k in self._names(prefix)]
        wanted = [(k, p) for k, p in parsed if p is not None]
        values = self.run_all([partial(self.json, k, "fragment") for k, _ in wanted])
        fragments: dict[str, dict[str, Any]] = {}
        for (key, (ident, name)), value in zip(wanted, values, strict=True):
            self._valid_names("an item metadata key", [name], partial(_same, key))
            fragments.setdefault(name, {})[ident] = value
        with self._lock:
            self._fragments = fragments
        return fragments

    # -- removal and freezing ----------------------------------------------------------------------

    def remove(self, relpaths: Iterable[str]) -> None:
        """Delete items of a proto dataset with their metadata fragments."""
        idents = {identifier(rel) for rel in relpaths}
        if not idents:
            return
        keys = [self.layout.item(ident) for ident in sorted(idents)]
        prefix = self.layout.fragments_prefix
        keys += [k for k in self._names(prefix) if k[len(prefix) : len(prefix) + 40] in idents]
        self.client.delete_many(keys)
        self.inventory.forget()

    def begin_freeze(self) -> dict[str, Item]:
        """Start a freeze: write the marker, then list the items and check their metadata."""
        self.wait_uploads()
        self.client.put_bytes(self.layout.freeze_marker, str(time.time()).encode("ascii"))
        items = self.items(fresh=True)
        for key, values in self.fragments().items():
            if set(values) != set(items):
                raise errors.DatasetStateError(
                    f"item metadata '{key}' is set on {len(set(values) & set(items))} of "
                    f"{len(items)} items of {self.uri}: add it to every item before freezing"
                )
        return items

    def end_freeze(self) -> None:
        """Finish a freeze: the fragments became overlays; the marker goes."""
        keys = self._names(self.layout.fragments_prefix)
        self.client.delete_many([*keys, self.layout.freeze_marker])
        with self._lock:
            self._fragments = None
            self._unconfirmed.clear()

    def freeze(
        self, frozen_at: float | None = None, admin: Mapping[str, Any] | None = None
    ) -> None:
        """Freeze a proto dataset, writing what ``dtool freeze`` writes; frozen ones are left.

        :param admin: its admin metadata, if the caller has them at hand
        """
        admin = dict(admin) if admin is not None else self.require_admin(fresh=True)
        if admin.get("type") == "dataset":
            return
        self.finish_freeze(self.begin_freeze(), admin, frozen_at)

    def finish_freeze(
        self, items: Mapping[str, Item], admin: Mapping[str, Any], frozen_at: float | None = None
    ) -> None:
        """Write the manifest of ``items`` (from :meth:`begin_freeze`), overlays, admin metadata."""
        self.put_manifest(manifest_document({i: _properties(item) for i, item in items.items()}))
        for name, values in self.fragments().items():
            body = json.dumps(values, indent=2).encode("utf-8")
            self.client.put_bytes(self.layout.overlay(name), body)
        frozen = {**admin, "type": "dataset"}
        frozen.setdefault("frozen_at", frozen_at if frozen_at is not None else time.time())
        self.put_admin_metadata(frozen)
        self.end_freeze()

    # -- helpers -----------------------------------------------------------------------------------

    def run_all(self, tasks: list[Callable[[], T]]) -> list[T]:
        """Run tasks concurrently (bounded by max_concurrency); raise the first failure."""
        if len(tasks) <= 1:
            return [task() for task in tasks]
        workers = max(1, min(self.config.max_concurrency, len(tasks)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dtool-s3") as pool:
            futures = [pool.submit(task) for task in tasks]
            return [future.result() for future in futures]

    def close(self) -> None:
        """Wait for background transfers and stop their threads."""
        self.wait_uploads()
        if self._uploads is not None:
            self._uploads.close()
        if self._download_pool is not None:
            self._download_pool.shutdown(wait=True)


def manifest_document(items: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """A dtool manifest of item properties (keys as dtoolcore writes them)."""
    from dtoolcore import __version__ as dtoolcore_version

    return {
        "dtoolcore_version": dtoolcore_version,
        "hash_function": "md5sum_hexdigest",
        "items": {ident: dict(props) for ident, props in items.items()},
    }


def _properties(item: Item) -> dict[str, Any]:
    if item.checksum is None:
        raise errors.DatasetStateError(f"item {validate.shown(item.handle)} has no checksum")
    return {
        "relpath": item.handle,
        "size_in_bytes": item.size,
        "hash": item.checksum,
        "utc_timestamp": item.timestamp,
    }


def _same(value: str, _: str) -> str:
    return value


def _md5_of(entries: Mapping[str, Entry], relpath: str) -> str | None:
    entry = entries.get(identifier(relpath))
    return entry.md5 if entry is not None else None


def _object(body: bytes) -> dict[str, Any]:
    value = validate.parse_json(body, "structure")
    validate.require(isinstance(value, dict), "is not a JSON object")
    return dict(value)


def _open_local(path: str | Path) -> Any:
    try:
        return open(path, "rb")
    except FileNotFoundError as exc:
        raise errors.ObjectNotFound(f"local file not found: {path}") from exc
    except IsADirectoryError as exc:
        raise errors.ConfigurationError(f"{path} is a directory, not a file") from exc
