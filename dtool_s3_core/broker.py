"""``S3StorageBroker``: the dtoolcore storage broker for ``s3://`` URIs.

It implements dtoolcore's broker contract in dtool-s3 0.14.1's on-bucket format (see
:mod:`dtool_s3_core.keys`) and delegates the work: requests to :mod:`.client`, transfers to
:mod:`.transfer`, item listings to :mod:`.inventory`, dataset discovery to :mod:`.registry` and
publishing to :mod:`.publish`. dtoolcore calls brokers item by item; uploads therefore run in a
bounded background queue behind :meth:`put_item`, with a barrier before anything reads the items,
and sequential item reads trigger read-ahead downloads.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from dtoolcore.filehasher import FileHasher, md5sum_hexdigest
from dtoolcore.storagebroker import BaseStorageBroker

from . import disksource, errors, registry
from ._exit import install_cli_excepthook, track_queue
from .client import S3Client
from .config import S3Config, resolve_config
from .inventory import Inventory
from .keys import (
    DTOOL_README_TXT,
    UUID_RE,
    KeyLayout,
    decode_handle,
    encode_handle,
    identifier,
    json_names,
    normalise_prefix,
    parse_fragment_key,
    structure_parameters,
    uses_base64_handles,
)
from .publish import http_enable
from .relpaths import check_relpath
from .transfer import TaskQueue, download, memory_budget, upload_stream
from .uri import parse_uri

logger = logging.getLogger(__name__)
install_cli_excepthook()
disksource.install()


class S3StorageBroker(BaseStorageBroker):  # type: ignore[misc]
    """dtool storage broker for S3 and S3-compatible object stores."""

    key = "s3"
    hasher = FileHasher(md5sum_hexdigest)
    _dtool_readme_txt = DTOOL_README_TXT

    def __init__(self, uri: str, config_path: str | None = None) -> None:
        parsed = parse_uri(uri)
        self.bucket = parsed.bucket
        self.uuid = parsed.uuid
        self._config: S3Config = resolve_config(self.bucket, config_path)
        self._client = S3Client(self._config)
        self._lock = threading.RLock()
        self._layout_cache: KeyLayout | None = None
        self._structure: dict[str, Any] | None = None
        self._inventory_cache: Inventory | None = None
        self._uploads: TaskQueue | None = None
        self._memory = memory_budget(self._config)
        self._manifest_cache: dict[str, Any] | None = None
        self._fragments: dict[str, dict[str, Any]] | None = None
        self._downloads: dict[str, Future[Path]] = {}
        self._download_pool: ThreadPoolExecutor | None = None
        self._last_read: str | None = None

    def __repr__(self) -> str:
        return f"S3StorageBroker(uri='s3://{self.bucket}/{self.uuid}')"

    # -- class methods -------------------------------------------------------------------------

    @classmethod
    def list_dataset_uris(cls, base_uri: str, config_path: str | None) -> list[str]:
        """Return the URIs of all datasets (frozen and proto) registered in the bucket."""
        bucket = parse_uri(base_uri).bucket
        config = resolve_config(bucket, config_path)
        client = S3Client(config)
        entries = registry.list_datasets(client, normalise_prefix(config.dataset_prefix))
        return [f"s3://{bucket}/{e.uuid}" for e in entries if e.admin_metadata is not None]

    @classmethod
    def generate_uri(cls, name: str, uuid: str, base_uri: str) -> str:
        """Return the URI of a dataset: ``s3://<bucket>/<uuid>`` (the base path is ignored)."""
        return f"s3://{parse_uri(base_uri).bucket}/{uuid}"

    # -- layout ----------------------------------------------------------------------------------

    @property
    def _layout(self) -> KeyLayout:
        with self._lock:
            if self._layout_cache is None:
                prefix = (
                    registry.registered_prefix(self._client, self.uuid) if self._is_uuid else None
                )
                if prefix is None:
                    return KeyLayout(self.uuid, normalise_prefix(self._config.dataset_prefix))
                self._layout_cache = KeyLayout(self.uuid, prefix)
            return self._layout_cache

    @property
    def _is_uuid(self) -> bool:
        return bool(UUID_RE.match(self.uuid))

    @property
    def _structure_parameters(self) -> dict[str, Any]:
        return structure_parameters(self.uuid)

    def get_admin_metadata_key(self) -> str:
        return self._layout.admin_metadata

    def get_readme_key(self) -> str:
        return self._layout.readme

    def get_manifest_key(self) -> str:
        return self._layout.manifest

    def get_structure_key(self) -> str:
        return self._layout.structure

    def get_dtool_readme_key(self) -> str:
        return self._layout.dtool_readme

    def get_overlay_key(self, overlay_name: str) -> str:
        return self._layout.overlay(overlay_name)

    def get_annotation_key(self, annotation_name: str) -> str:
        return self._layout.annotation(annotation_name)

    def get_tag_key(self, tag: str) -> str:
        return self._layout.tag(tag)

    # -- text objects ----------------------------------------------------------------------------

    def get_text(self, key: str) -> str:
        found = self._client.get_bytes(key)
        if found is None:
            raise self._client.missing(key, "dataset object")
        try:
            return found[0].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise errors.DatasetStateError(
                f"s3://{self.bucket}/{key} is not UTF-8 text; rewrite it as UTF-8"
            ) from exc

    def put_text(self, key: str, text: str) -> None:
        self._client.put_bytes(key, text.encode("utf-8"))

    def delete_key(self, key: str) -> None:
        self._client.call("delete_object", key)

    def _names(self, prefix: str) -> list[str]:
        return [info.key for info in self._client.list_objects(prefix)]

    def list_overlay_names(self) -> list[str]:
        prefix = self._layout.overlays_prefix
        return json_names(self._names(prefix), prefix)

    def list_annotation_names(self) -> list[str]:
        prefix = self._layout.annotations_prefix
        return json_names(self._names(prefix), prefix)

    def list_tags(self) -> list[str]:
        prefix = self._layout.tags_prefix
        return [key[len(prefix) :] for key in self._names(prefix)]

    def _list_historical_readme_keys(self) -> list[str]:
        return self._names(self._layout.readme + "-")

    # -- admin metadata --------------------------------------------------------------------------

    def has_admin_metadata(self) -> bool:
        if not self._is_uuid:
            return False
        return registry.read_admin_metadata(self._client, self._layout) is not None

    def get_admin_metadata(self) -> dict[str, Any]:
        admin = registry.read_admin_metadata(self._client, self._layout) if self._is_uuid else None
        if admin is None:
            raise self._client.missing(self._layout.admin_metadata, "dataset")
        return admin

    def put_admin_metadata(self, admin_metadata: dict[str, Any]) -> None:
        self._drain()
        registry.write_admin_metadata(self._client, self._layout, admin_metadata)

    # -- structure -------------------------------------------------------------------------------

    def _create_structure(self) -> None:
        if not self._is_uuid:
            raise errors.ConfigurationError(f"not a dataset URI: s3://{self.bucket}/{self.uuid}")
        existing = registry.registered_prefix(self._client, self.uuid)
        layout = KeyLayout(self.uuid, existing if existing is not None else self._layout.prefix)
        if registry.read_admin_metadata(self._client, layout, fresh=True) is not None:
            raise errors.DatasetStateError(
                f"a dataset already exists at s3://{self.bucket}/{self.uuid}: use "
                "'dtool cp --resume' to finish an interrupted copy, or delete it first"
            )
        self._client.put_bytes(layout.registration_key, layout.prefix.encode("utf-8"))
        registry.remember_prefix(self._client, self.uuid, layout.prefix)
        with self._lock:
            self._layout_cache = layout

    def _structure_json(self) -> dict[str, Any] | None:
        with self._lock:
            if self._structure is None:
                found = self._client.get_bytes(self._layout.structure)
                self._structure = (
                    self._parse_json(self._layout.structure, found[0]) if found else {}
                )
            return self._structure or None

    def _parse_json(self, key: str, text: str | bytes) -> Any:
        """Parse a JSON object of the dataset: damaged content is one line, not a traceback."""
        try:
            return json.loads(text)
        except ValueError as exc:
            where = f"s3://{self.bucket}/{key}"
            raise errors.damaged(where, f"is not valid JSON ({exc})") from exc

    # -- items -----------------------------------------------------------------------------------

    @property
    def _inventory(self) -> Inventory:
        with self._lock:
            if self._inventory_cache is None:
                self._inventory_cache = Inventory(
                    self._client,
                    self._layout,
                    lambda: uses_base64_handles(self._structure_json()),
                )
                for entry in (self._manifest_items() or {}).values():
                    self._inventory_cache.learn(entry["relpath"], None)
            return self._inventory_cache

    def put_item(self, fpath: str, relpath: str) -> str:
        """Queue the upload of a file; returns the handle at once (see :meth:`_drain`)."""
        check_relpath(relpath)
        try:
            stream = open(fpath, "rb")  # noqa: SIM115 - closed by the upload task
        except FileNotFoundError as exc:
            raise errors.ObjectNotFound(f"local file not found: {fpath}") from exc
        except IsADirectoryError as exc:
            raise errors.ConfigurationError(f"{fpath} is a directory, not a file") from exc
        key = self._layout.item(identifier(relpath))
        inventory = self._inventory

        def upload() -> None:
            with stream:
                result = upload_stream(
                    self._client,
                    key,
                    stream,
                    lambda md5: {"handle": encode_handle(relpath), "checksum": md5},
                    self._memory,
                )
            inventory.learn(relpath, result.md5)

        with self._lock:
            if self._uploads is None:
                workers = self._config.max_concurrency
                self._uploads = TaskQueue(workers, 4 * workers, "dtool-s3-put")
                track_queue(self._uploads)
            queue = self._uploads
        try:
            queue.submit(upload)
        except BaseException:
            stream.close()
            raise
        return relpath

    def _drain(self) -> None:
        """Barrier: wait for queued uploads and raise the first failure."""
        queue = self._uploads
        if queue is not None:
            queue.drain()

    def iter_item_handles(self) -> Iterator[str]:
        self._drain()
        items = self._inventory.items()
        return iter([items[ident].handle for ident in sorted(items)])

    def get_size_in_bytes(self, handle: str) -> int:
        return self._inventory.get(handle).size

    def get_utc_timestamp(self, handle: str) -> float:
        return self._inventory.get(handle).timestamp

    def get_hash(self, handle: str) -> str:
        return self._inventory.checksum(handle)

    def pre_freeze_hook(self) -> None:
        self._drain()
        self._inventory.forget()
        items = self._inventory.items()
        for key, values in self._all_fragments().items():
            if set(values) != set(items):
                raise errors.DatasetStateError(
                    f"item metadata '{key}' is set on {len(set(values) & set(items))} of "
                    f"{len(items)} items of s3://{self.bucket}/{self.uuid}: add it to every item "
                    "before freezing"
                )

    def post_freeze_hook(self) -> None:
        keys = self._names(self._layout.fragments_prefix)
        if keys:
            self._client.delete_many(keys)
        with self._lock:
            self._fragments = None

    # -- item metadata ---------------------------------------------------------------------------

    def add_item_metadata(self, handle: str, key: str, value: Any) -> None:
        self._client.put_bytes(
            self._layout.fragment(identifier(handle), key), json.dumps(value).encode("utf-8")
        )
        with self._lock:
            self._fragments = None

    def get_item_metadata(self, handle: str) -> dict[str, Any]:
        ident = identifier(handle)
        return {
            key: values[ident] for key, values in self._all_fragments().items() if ident in values
        }

    def _all_fragments(self) -> dict[str, dict[str, Any]]:
        """Return {metadata key: {identifier: value}}: one listing, then concurrent GETs."""
        with self._lock:
            if self._fragments is not None:
                return self._fragments
            prefix = self._layout.fragments_prefix
            keys = self._names(prefix)
            fragments: dict[str, dict[str, Any]] = {}
            if keys:
                workers = max(1, min(self._config.max_concurrency, len(keys)))
                with ThreadPoolExecutor(max_workers=workers) as pool:
                    bodies = list(pool.map(self.get_text, keys))
                for key, body in zip(keys, bodies, strict=True):
                    parsed = parse_fragment_key(key[len(prefix) :])
                    if parsed is not None:
                        value = self._parse_json(key, body)
                        fragments.setdefault(parsed[1], {})[parsed[0]] = value
            self._fragments = fragments
            return fragments

    # -- manifest and item content ---------------------------------------------------------------

    def get_manifest(self) -> dict[str, Any]:
        with self._lock:
            if self._manifest_cache is None:
                key = self._layout.manifest
                manifest = self._parse_json(key, self.get_text(key))
                if not isinstance(manifest, dict) or not isinstance(manifest.get("items"), dict):
                    raise errors.damaged(f"s3://{self.bucket}/{key}", "is not a dtool manifest")
                self._manifest_cache = manifest
            return self._manifest_cache

    def put_manifest(self, manifest: dict[str, Any]) -> None:
        self._drain()
        super().put_manifest(manifest)
        with self._lock:
            self._manifest_cache = manifest

    def _manifest_items(self) -> dict[str, dict[str, Any]] | None:
        if self._manifest_cache is None:
            admin = (
                registry.read_admin_metadata(self._client, self._layout) if self._is_uuid else None
            )
            if admin is None or admin.get("type") != "dataset":
                return None
        items: dict[str, dict[str, Any]] = self.get_manifest()["items"]
        return items

    def get_item_abspath(self, identifier: str) -> str:
        """Return a local path of the item, downloading it (verified) into the cache if needed."""
        items = self._manifest_items() or {}
        future = self._schedule_download(identifier, items)
        if self._last_read is not None and items:
            order = list(items)
            position = order.index(identifier) if identifier in order else -1
            if position > 0 and order[position - 1] == self._last_read:
                for ahead in order[position + 1 : position + 1 + self._config.max_concurrency]:
                    self._schedule_download(ahead, items)
        self._last_read = identifier
        return str(future.result())

    def _schedule_download(self, ident: str, items: dict[str, dict[str, Any]]) -> Future[Path]:
        with self._lock:
            future = self._downloads.get(ident)
            if future is not None and not (future.done() and future.exception()):
                return future
            if self._download_pool is None:
                self._download_pool = ThreadPoolExecutor(
                    max_workers=self._config.max_concurrency, thread_name_prefix="dtool-s3-get"
                )
            future = self._download_pool.submit(self._fetch_item, ident, items.get(ident))
            self._downloads[ident] = future
            return future

    def _fetch_item(self, ident: str, entry: dict[str, Any] | None) -> Path:
        key = self._layout.item(ident)
        if entry is None:
            head = self._client.exists(key)
            if head is None:
                raise self._client.missing(key, "item")
            encoded = str(head.get("Metadata", {}).get("handle", ""))
            relpath = decode_handle(encoded, uses_base64_handles(self._structure_json()))
            expected_md5, expected_size = head.get("Metadata", {}).get("checksum"), None
        else:
            relpath = entry["relpath"]
            expected_md5, expected_size = entry["hash"], int(entry["size_in_bytes"])
        target = Path(self._config.cache_directory) / self.uuid / (ident + Path(relpath).suffix)
        if target.is_file() and (expected_size is None or target.stat().st_size == expected_size):
            return target
        return download(self._client, key, target, expected_md5, expected_size)

    # -- publishing ------------------------------------------------------------------------------

    def http_enable(self) -> str:
        """Publish the dataset over HTTP(S) and return its access URL (``dtool publish``)."""
        return http_enable(self._client, self._layout, self)

    def close(self) -> None:
        """Wait for background uploads and stop the broker's threads."""
        self._drain()
        if self._uploads is not None:
            self._uploads.close()
        if self._download_pool is not None:
            self._download_pool.shutdown(wait=True)
