"""``S3StorageBroker``: the dtoolcore storage broker for ``s3://`` URIs.

A thin adapter: dtoolcore's broker contract on top of :class:`~.dataset.S3Dataset`, which reads
and writes the dataset (and checks everything it reads). dtoolcore calls brokers item by item;
uploads therefore run in a bounded background queue behind :meth:`put_item`, with a barrier before
anything reads the items, and sequential item reads trigger read-ahead downloads.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from dtoolcore.filehasher import FileHasher, md5sum_hexdigest
from dtoolcore.storagebroker import BaseStorageBroker

from . import errors
from ._dataset import registry
from ._dataset.barriers import track_queue
from ._dataset.dataset import S3Dataset
from ._dataset.publish import http_enable
from ._format import validate
from ._format.keys import DTOOL_README_TXT, identifier, structure_parameters
from ._format.uri import object_url, parse_base_uri, parse_uri
from .config import resolve_config

logger = logging.getLogger(__name__)
#: Bytes of the following items fetched when the first item of a frozen dataset is read.
FIRST_READ_AHEAD = 64 * 1024 * 1024


class S3StorageBroker(BaseStorageBroker):  # type: ignore[misc]
    """dtool storage broker for S3 and S3-compatible object stores."""

    key = "s3"
    hasher = FileHasher(md5sum_hexdigest)
    _dtool_readme_txt = DTOOL_README_TXT

    def __init__(self, uri: str, config_path: str | None = None) -> None:
        parsed = parse_uri(uri)
        self.bucket = parsed.bucket
        self.uuid = parsed.uuid
        self.dataset = S3Dataset(resolve_config(self.bucket, config_path), self.uuid)
        self._last_read: str | None = None
        self._reading_ahead = False
        self._read_order: tuple[list[str], dict[str, int]] | None = None

    def __repr__(self) -> str:
        return f"S3StorageBroker(uri='s3://{self.bucket}/{self.uuid}')"

    # -- class methods -------------------------------------------------------------------------

    @classmethod
    def list_dataset_uris(cls, base_uri: str, config_path: str | None) -> list[str]:
        """Return the URIs of all datasets (frozen and proto) registered in the bucket."""
        bucket = parse_base_uri(base_uri, listing=True).bucket
        entries = registry.list_datasets(resolve_config(bucket, config_path))
        return [object_url(bucket, entry.uuid) for entry in entries]

    @classmethod
    def generate_uri(cls, name: str, uuid: str, base_uri: str) -> str:
        """Return the URI of a dataset: ``s3://<bucket>/<uuid>``."""
        return object_url(parse_base_uri(base_uri).bucket, uuid)

    # -- keys ------------------------------------------------------------------------------------

    @property
    def _structure_parameters(self) -> dict[str, Any]:
        return structure_parameters(self.uuid)

    def get_admin_metadata_key(self) -> str:
        return self.dataset.layout.admin_metadata

    def get_readme_key(self) -> str:
        return self.dataset.layout.readme

    def get_manifest_key(self) -> str:
        return self.dataset.layout.manifest

    def get_structure_key(self) -> str:
        return self.dataset.layout.structure

    def get_dtool_readme_key(self) -> str:
        return self.dataset.layout.dtool_readme

    def get_overlay_key(self, overlay_name: str) -> str:
        return self.dataset.layout.overlay(_name("overlay", overlay_name))

    def get_annotation_key(self, annotation_name: str) -> str:
        return self.dataset.layout.annotation(_name("annotation", annotation_name))

    def get_tag_key(self, tag: str) -> str:
        return self.dataset.layout.tag(_name("tag", tag))

    # -- text objects ----------------------------------------------------------------------------

    def get_text(self, key: str) -> str:
        return self.dataset.text(key)

    def put_text(self, key: str, text: str) -> None:
        self.dataset.put_text(key, text)

    def delete_key(self, key: str) -> None:
        self.dataset.delete(key)

    def list_overlay_names(self) -> list[str]:
        return self.dataset.overlay_names()

    def list_annotation_names(self) -> list[str]:
        return self.dataset.annotation_names()

    def list_tags(self) -> list[str]:
        return self.dataset.tags()

    def get_overlay(self, overlay_name: str) -> dict[str, Any]:
        return self.dataset.overlay(_name("overlay", overlay_name))

    def get_annotation(self, annotation_name: str) -> Any:
        return self.dataset.annotation(_name("annotation", annotation_name))

    def _list_historical_readme_keys(self) -> list[str]:
        prefix = self.dataset.layout.readme + "-"
        return [info.key for info in self.dataset.client.list_objects(prefix)]

    # -- admin metadata and structure ------------------------------------------------------------

    def has_admin_metadata(self) -> bool:
        return self.dataset.admin_metadata() is not None

    def get_admin_metadata(self) -> dict[str, Any]:
        return self.dataset.require_admin()

    def put_admin_metadata(self, admin_metadata: dict[str, Any]) -> None:
        self.dataset.wait_uploads()
        self.dataset.put_admin_metadata(admin_metadata)

    def _create_structure(self) -> None:
        self.dataset.create()

    # -- items -----------------------------------------------------------------------------------

    def put_item(self, fpath: str, relpath: str) -> str:
        """Queue the upload of a file; returns the handle at once (see ``wait_uploads``)."""
        self.dataset.queue_upload(fpath, relpath, track_queue)
        return relpath

    def iter_item_handles(self) -> Iterator[str]:
        items = self.dataset.items()
        return iter([items[ident].handle for ident in sorted(items)])

    def get_size_in_bytes(self, handle: str) -> int:
        return self.dataset.inventory.get(handle).size

    def get_utc_timestamp(self, handle: str) -> float:
        return self.dataset.inventory.get(handle).timestamp

    def get_hash(self, handle: str) -> str:
        """Return the item's stored ``checksum`` metadata, as dtool-s3 does.

        Never the manifest's MD5, which ``dtool verify -f`` compares this with: for a frozen
        dataset the first call HEADs every listed item concurrently and later calls answer
        from memory (items this process uploaded need no HEAD).
        """
        return self.dataset.inventory.checksum(handle)

    def pre_freeze_hook(self) -> None:
        self.dataset.begin_freeze()

    def post_freeze_hook(self) -> None:
        self.dataset.end_freeze()

    def add_item_metadata(self, handle: str, key: str, value: Any) -> None:
        self.dataset.put_item_metadata(handle, key, value)

    def get_item_metadata(self, handle: str) -> dict[str, Any]:
        ident = identifier(handle)
        return {
            key: values[ident]
            for key, values in self.dataset.fragments().items()
            if ident in values
        }

    # -- manifest and item content ---------------------------------------------------------------

    def get_manifest(self) -> dict[str, Any]:
        return dict[str, Any](self.dataset.manifest())

    def put_manifest(self, manifest: dict[str, Any]) -> None:
        self.dataset.wait_uploads()
        self.dataset.put_manifest(manifest)

    def get_item_abspath(self, identifier: str) -> str:
        """Return a local path of the item from the verified cache, downloading it if needed.

        Reads in manifest order (how dtoolcore copies) start downloads of the next items: from
        the first item on, but only up to :data:`FIRST_READ_AHEAD` bytes until a second item
        in order confirms the pattern (a lone ``dtool item fetch`` then costs little extra).
        """
        if not self._reading_ahead:
            # Downloads ahead are background work too: a Ctrl-C in the dtool CLI drops them.
            self._reading_ahead = True
            track_queue(self.dataset)
        future = self.dataset.prefetch(identifier)
        order, positions = self._order()
        position = positions.get(identifier, -1)
        if position == 0 or (position > 0 and order[position - 1] == self._last_read):
            entries = self.dataset.frozen_entries() or {}
            budget = FIRST_READ_AHEAD if position == 0 else None
            for ahead in order[position + 1 : position + 1 + self.dataset.config.max_concurrency]:
                if budget is not None:
                    budget -= entries[ahead].size
                    if budget < 0:
                        break
                self.dataset.prefetch(ahead)
        self._last_read = identifier
        try:
            return str(future.result())
        except KeyboardInterrupt:
            self.dataset.interrupt()
            raise

    def _order(self) -> tuple[list[str], dict[str, int]]:
        """The frozen manifest's identifiers in order, and each one's position (computed once)."""
        if self._read_order is None:
            order = list(self.dataset.frozen_entries() or {})
            self._read_order = (order, {ident: n for n, ident in enumerate(order)})
        return self._read_order

    # -- publishing ------------------------------------------------------------------------------

    def http_enable(self) -> str:
        """Publish the dataset over HTTP(S) and return its access URL (``dtool publish``)."""
        return http_enable(self.dataset)

    def close(self) -> None:
        """Wait for background transfers and stop the broker's threads."""
        self.dataset.close()


def _name(kind: str, name: str) -> str:
    """Refuse a tag, overlay or annotation name that dtool would not accept."""
    problem = validate.name_problem(name)
    if problem is not None:
        raise errors.ConfigurationError(f"{kind} name {validate.shown(name)} {problem}")
    return name
