"""The objects of one dataset in one bucket, read and written in dtool-s3 0.14.1's format.

This is the one place that knows what a dataset's objects mean: its registration, admin
metadata, README, tags, overlays, annotations, manifest and item metadata. Everything read from
the bucket is checked (:mod:`.._format.validate`, :mod:`.._format.manifest`) before it becomes a
path, a key or a claim of integrity: a damaged or hostile object is refused with one line naming
the object. Item bodies are moved by :mod:`.uploads` and :mod:`.downloads`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from .. import errors
from .._format import manifest, validate
from .._format.keys import (
    DTOOL_README_TXT,
    UUID_RE,
    KeyLayout,
    identifier,
    json_names,
    normalise_prefix,
    parse_fragment_key,
    structure_parameters,
    uses_base64_handles,
)
from .._format.manifest import Entry, Manifest, manifest_document
from .._format.uri import object_url
from .._format.validate import Invalid
from .._s3.client import S3Client
from ..config import S3Config
from . import registry
from .inventory import Inventory, Item

T = TypeVar("T")


class DatasetObjects:
    """The metadata objects of one dataset (proto or frozen); thread-safe; caches what cannot
    change."""

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

    def __repr__(self) -> str:
        return f"S3Dataset('{self.uri}')"

    @property
    def uri(self) -> str:
        return object_url(self.bucket, self.uuid)

    @property
    def is_uuid(self) -> bool:
        return bool(UUID_RE.match(self.uuid))

    def where(self, key: str) -> str:
        return object_url(self.bucket, key)

    def _checked(self, key: str, read: Callable[[], T]) -> T:
        try:
            return read()
        except Invalid as exc:
            raise errors.damaged(self.where(key), str(exc), self.uri) from exc

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
            self._checked(layout.admin_metadata, lambda: manifest.check_admin(admin, self.uuid))
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
                f"interrupted copy, or delete it first with 'dtool s3 rm {self.uri}'"
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
                self.uri,
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
                    self.uri,
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

    def put_readme(self, text: str) -> None:
        self.put_text(self.layout.readme, text)

    def put_tag(self, tag: str) -> None:
        self.client.put_bytes(self.layout.tag(self._valid_name("tag", tag)), b"")

    def put_overlay(self, name: str, overlay: Mapping[str, Any]) -> None:
        key = self.layout.overlay(self._valid_name("overlay", name))
        self.client.put_bytes(key, _json_body(overlay))

    def put_annotation(self, name: str, annotation: Any) -> None:
        key = self.layout.annotation(self._valid_name("annotation", name))
        self.client.put_bytes(key, _json_body(annotation))

    def _valid_name(self, kind: str, name: str) -> str:
        problem = validate.name_problem(name)
        if problem is not None:
            raise errors.ConfigurationError(
                f"invalid {kind} name {validate.shown(name)}: {problem}"
            )
        return name

    # -- manifest ----------------------------------------------------------------------------------

    def entries(self) -> dict[str, Entry]:
        """Return the checked manifest items of a frozen dataset by identifier."""
        with self._lock:
            if self._entries is None:
                key = self.layout.manifest
                document = self.json(key, "manifest")
                self._entries = self._checked(key, lambda: manifest.parse_manifest(document))
            return self._entries

    def frozen_entries(self) -> dict[str, Entry] | None:
        """The manifest items if the dataset is frozen, else None."""
        if self._entries is None:
            admin = self.admin_metadata()
            if admin is None or admin.get("type") != "dataset":
                return None
        return self.entries()

    def manifest(self) -> Manifest:
        """The manifest as dtoolcore reads it, rebuilt from the checked items."""
        return manifest_document({i: e.as_dict() for i, e in self.entries().items()})

    def put_manifest(self, manifest: Mapping[str, Any]) -> None:
        body = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8")
        self.client.put_bytes(self.layout.manifest, body)
        with self._lock:
            self._entries = None

    # -- items and item metadata -------------------------------------------------------------------

    @property
    def inventory(self) -> Inventory:
        with self._lock:
            if self._inventory is None:
                self._inventory = Inventory(self.client, self.layout, self.base64_handles)
                # The manifest spares the listing a HEAD per item for its handle, but its
                # MD5s are what the objects should hold: checksums (dtool verify -f) are read
                # from the objects' metadata.
                for entry in (self.frozen_entries() or {}).values():
                    self._inventory.learn(entry.relpath, None)
            return self._inventory

    def stat(self, relpath: str) -> Item | None:
        """One item by relpath as stored now, None if there is none (one HEAD)."""
        ident = identifier(relpath)
        head = self.client.exists(self.layout.item(ident))
        return None if head is None else self.inventory.from_head(ident, head)

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

    def run_all(self, tasks: list[Callable[[], T]]) -> list[T]:
        """Run tasks concurrently (bounded by max_concurrency); raise the first failure.

        A ``KeyboardInterrupt`` while waiting stops them all (see :meth:`interrupt`): tasks not
        started never start, the others stop at their next chunk or part, and it is raised once
        they have ended (so their multipart uploads are aborted by then).
        """
        self.check_not_interrupted()
        if len(tasks) <= 1:
            try:
                return [task() for task in tasks]
            except KeyboardInterrupt:
                self.interrupt()
                raise
        workers = max(1, min(self.config.max_concurrency, len(tasks)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dtool-s3") as pool:
            try:
                futures = [pool.submit(task) for task in tasks]
                return [future.result() for future in futures]
            except KeyboardInterrupt:
                pool.shutdown(wait=False, cancel_futures=True)
                self.interrupt()
                raise

    def interrupt(self) -> None:
        """Stop this dataset's transfers for good (Ctrl-C); the object moves no more items."""
        self.client.cancel.set()

    def check_not_interrupted(self) -> None:
        """Refuse to go on with a dataset object whose transfers were interrupted."""
        if self.client.cancel.is_set():
            raise errors.DatasetStateError(
                f"the transfers of {self.uri} were interrupted (Ctrl-C): items being uploaded "
                "may be missing; open the dataset again to go on"
            )


def _same(value: str, _: str) -> str:
    return value


def _object(body: bytes) -> dict[str, Any]:
    value = validate.parse_json(body, "structure")
    validate.require(isinstance(value, dict), "is not a JSON object")
    return dict(value)


def _json_body(value: Any) -> bytes:
    return json.dumps(value, indent=2).encode("utf-8")
