"""``S3Dataset``: one dataset in one bucket, read and written in dtool-s3 0.14.1's format.

The dtoolcore broker, the copy operations, the Python API and the integrations all go through
it. It joins the dataset's objects (:mod:`.objects`), item uploads (:mod:`.uploads`) and
downloads (:mod:`.downloads`), and owns what needs all of them: the listing of stored items
(after queued uploads), removal and the freeze.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

from .. import errors
from .._format import validate
from .._format.keys import identifier
from .._format.manifest import ManifestItem, manifest_document
from .downloads import Downloads
from .inventory import Item
from .uploads import Uploads


class S3Dataset(Uploads, Downloads):
    """One dataset (proto or frozen) of a bucket; thread-safe; caches what cannot change."""

    def items(self, fresh: bool = False) -> dict[str, Item]:
        """Every stored item by identifier (one listing, HEADs only for unknown items)."""
        self.wait_uploads()
        if fresh:
            self.inventory.forget()
        return self.inventory.items()

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
        try:
            self._check_freezable(items)
        except errors.DatasetStateError:
            # Writers wait for a freeze marker to go; a refused freeze must not leave one.
            self.client.delete_many([self.layout.freeze_marker])
            raise
        return items

    def _check_freezable(self, items: Mapping[str, Item]) -> None:
        for key, values in self.fragments().items():
            if set(values) != set(items):
                raise errors.DatasetStateError(
                    f"item metadata '{key}' is set on {len(set(values) & set(items))} of "
                    f"{len(items)} items of {self.uri}: add it to every item before freezing"
                )
        # Items of other writers (dtool-s3) were never checked: a dataset frozen here must be
        # one that a local disk can hold.
        problem = validate.local_names_problem(item.handle for item in items.values())
        if problem is not None:
            raise errors.DatasetStateError(
                f"cannot freeze {self.uri}: it {problem}; put the items into a new dataset "
                "under other names"
            )

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

    def close(self) -> None:
        """Wait for background transfers and stop their threads."""
        self.close_uploads()
        self.close_downloads()


def _properties(item: Item) -> ManifestItem:
    if item.checksum is None:
        raise errors.DatasetStateError(f"item {validate.shown(item.handle)} has no checksum")
    return {
        "relpath": item.handle,
        "size_in_bytes": item.size,
        "hash": item.checksum,
        "utc_timestamp": item.timestamp,
    }
