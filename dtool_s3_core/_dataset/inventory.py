"""The item inventory of one dataset, built from one paginated listing and reused.

dtoolcore asks for handles, sizes, timestamps and hashes item by item and iterates the handles
several times per freeze or copy. The inventory answers all of that from one ``data/`` listing
(size, Last-Modified) plus what is already known: items this process uploaded (handle and
checksum), and the manifest of a frozen dataset (handles only). Only items known from neither get
a HEAD (for their ``handle`` and ``checksum`` metadata), and those HEADs run concurrently.

Checksums are what the objects' metadata says, never what a manifest says: a manifest tells what
the checksums should be, and ``dtool verify -f`` compares the two. So the first checksum asked
for of a frozen dataset HEADs every listed item, concurrently, once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from .. import errors
from .._format import validate
from .._format.keys import IDENTIFIER_RE, KeyLayout, decode_handle, identifier
from .._format.uri import object_url
from .._s3.client import S3Client

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Item:
    """What is known of one stored item."""

    identifier: str
    handle: str
    size: int
    timestamp: float
    checksum: str | None


@dataclass(frozen=True)
class Known:
    """An item's handle (from an upload, a manifest or a HEAD) and its stored checksum if known.

    The checksum is known from this process's own upload or from the object's metadata.
    """

    handle: str
    checksum: str | None


class Inventory:
    """Items of one dataset; thread-safe; refreshed lazily after uploads."""

    def __init__(
        self,
        client: S3Client,
        layout: KeyLayout,
        base64_handles: Callable[[], bool],
    ) -> None:
        self._client = client
        self._layout = layout
        self._base64_handles = base64_handles
        self._lock = threading.RLock()
        self._known: dict[str, Known] = {}
        self._items: dict[str, Item] | None = None
        # Identifiers whose object metadata was read: one without checksum metadata is not
        # HEADed again for each question.
        self._headed: set[str] = set()

    def learn(self, handle: str, checksum: str | None) -> None:
        """Record an item's handle (and the checksum stored with it, if known: None for a
        manifest entry) so that listing it needs no HEAD later."""
        with self._lock:
            self._known[identifier(handle)] = Known(handle, checksum)
            self._items = None

    def forget(self) -> None:
        """Drop the listing; the next question lists again."""
        with self._lock:
            self._items = None

    def items(self) -> dict[str, Item]:
        """Return every stored item by identifier (one listing per 1000 items, cached)."""
        with self._lock:
            if self._items is None:
                self._items = self._build()
            return self._items

    def get(self, handle: str) -> Item:
        """Return one item by handle, with one HEAD if the listing has not seen it."""
        ident = identifier(handle)
        with self._lock:
            found = (self._items or {}).get(ident)
        if found is not None:
            return found
        head = self._client.exists(self._layout.item(ident))
        if head is None:
            raise self._client.missing(self._layout.item(ident), f"item {handle!r}")
        return Item(
            identifier=ident,
            handle=handle,
            size=int(head["ContentLength"]),
            timestamp=head["LastModified"].timestamp(),
            checksum=self._checksum(ident, head.get("Metadata", {})),
        )

    def stored_checksum(self, handle: str) -> str | None:
        """Return an item's ``checksum`` metadata as stored, None if it has none.

        The first question lists the items (if not listed yet) and HEADs, concurrently, every
        listed item whose checksum is not known yet; later ones are answered from memory.
        """
        ident = identifier(handle)
        with self._lock:
            items = self.items()
            if ident in items:
                if items[ident].checksum is None and ident not in self._headed:
                    self._fill(items, only_checksums=True)
                return items[ident].checksum
        # Not listed: stored since the listing (one HEAD), or missing (get raises).
        return self.get(handle).checksum

    def checksum(self, handle: str) -> str:
        """Return the stored ``checksum`` metadata (see :meth:`stored_checksum`); it must exist."""
        checksum = self.stored_checksum(handle)
        if checksum is None:
            raise errors.DatasetStateError(
                f"{object_url(self._client.bucket, self._layout.item(identifier(handle)))} has no "
                "checksum metadata; re-upload the item"
            )
        return checksum

    def _build(self) -> dict[str, Item]:
        items: dict[str, Item] = {}
        prefix = self._layout.data_prefix
        for info in self._client.list_objects(prefix):
            ident = info.key[len(prefix) :]
            if not IDENTIFIER_RE.match(ident):
                logger.warning("ignoring stray key s3://%s/%s", self._client.bucket, info.key)
                continue
            known = self._known.get(ident)
            items[ident] = Item(
                identifier=ident,
                handle=known.handle if known else "",
                size=info.size,
                timestamp=info.last_modified,
                checksum=known.checksum if known else None,
            )
        self._fill(items, only_checksums=False)
        return items

    def _fill(self, items: dict[str, Item], only_checksums: bool) -> None:
        """HEAD, concurrently, the items without a handle (or, ``only_checksums``, without a
        checksum whose metadata was not read yet); callers hold the lock."""
        wanted = [
            ident
            for ident, item in items.items()
            if (
                item.checksum is None and ident not in self._headed
                if only_checksums
                else not item.handle
            )
        ]
        if not wanted:
            return
        workers = max(1, min(self._client.config.max_concurrency, len(wanted)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dtool-s3-head") as pool:
            if only_checksums:
                # The handle is known already (manifest or listing): only the checksum is read,
                # so an object whose handle metadata was lost still shows its checksum.
                for ident, checksum in pool.map(self._head_checksum, wanted):
                    items[ident] = replace(items[ident], checksum=checksum)
                    self._known[ident] = Known(items[ident].handle, checksum)
                    self._headed.add(ident)
                return
            for fetched in pool.map(self._head_item, wanted):
                current = items[fetched.identifier]
                items[fetched.identifier] = replace(
                    current, handle=current.handle or fetched.handle, checksum=fetched.checksum
                )
                self._known[fetched.identifier] = Known(fetched.handle, fetched.checksum)
                self._headed.add(fetched.identifier)

    def _head_item(self, ident: str) -> Item:
        return self.from_head(ident, self._head(ident))

    def _head_checksum(self, ident: str) -> tuple[str, str | None]:
        return ident, self._checksum(ident, self._head(ident).get("Metadata", {}))

    def _head(self, ident: str) -> dict[str, Any]:
        key = self._layout.item(ident)
        head = self._client.exists(key)
        if head is None:
            raise errors.ObjectNotFound(
                f"item vanished while listing: s3://{self._client.bucket}/{key}"
            )
        return head

    def from_head(self, ident: str, head: dict[str, Any]) -> Item:
        """Return the item a HEAD response describes, its handle and checksum checked."""
        key = self._layout.item(ident)
        metadata = head.get("Metadata", {})
        encoded = metadata.get("handle")
        if encoded is None:
            raise errors.DatasetStateError(
                f"{object_url(self._client.bucket, key)} has no handle metadata: it was not "
                "written by dtool; remove it or re-upload the item"
            )
        handle = decode_handle(str(encoded), self._base64_handles())
        problem = validate.relpath_problem(handle)
        if problem is None and identifier(handle) != ident:
            problem = "is not the relpath its key is the SHA-1 of"
        if problem is not None:
            raise errors.damaged(
                object_url(self._client.bucket, key),
                f"has a handle {validate.shown(handle)} that {problem}",
                object_url(self._client.bucket, self._layout.uuid),
            )
        return Item(
            identifier=ident,
            handle=handle,
            size=int(head["ContentLength"]),
            timestamp=head["LastModified"].timestamp(),
            checksum=self._checksum(ident, metadata),
        )

    def _checksum(self, ident: str, metadata: dict[str, Any]) -> str | None:
        value = metadata.get("checksum")
        if value is None:
            return None
        if not validate.MD5_RE.match(str(value)):
            raise errors.damaged(
                object_url(self._client.bucket, self._layout.item(ident)),
                f"has a checksum {validate.shown(value)} that is not an MD5",
                object_url(self._client.bucket, self._layout.uuid),
            )
        return str(value)
