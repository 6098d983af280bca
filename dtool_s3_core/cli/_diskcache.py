"""Reading items of local datasets without re-reading their manifest for every item.

dtoolcore's disk broker (3.17 to 3.19) answers ``get_item_abspath`` by reading and parsing the whole
manifest each time, so ``dtool cp`` of a local dataset of N items parses the manifest N times:
quadratic, and the largest cost of copying 10,000 small items to S3. :func:`install` gives the
disk broker one identifier -> relpath map per manifest file, keyed by its modification time and
size so that a rewritten manifest is read again. Anything unusual (no manifest, an unknown
identifier, a relpath that leaves the data directory) goes to dtoolcore's own method unchanged.

Only the dtool command line installs it (see :mod:`._hooks`), and only on the dtoolcore
versions whose method it was measured against; docs/upstream-disk-broker.md proposes the same
cache to dtoolcore itself.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import dtoolcore
from dtoolcore.storagebroker import DiskStorageBroker, handle_to_osrelpath

from .._format.validate import relpath_problem

WRITTEN_FOR = ("3.17.", "3.18.", "3.19.")

_lock = threading.Lock()
_maps: dict[str, tuple[tuple[int, int], dict[str, str]]] = {}
_installed = threading.Event()


def _relpaths(manifest_path: str, broker: Any) -> dict[str, str] | None:
    try:
        status = os.stat(manifest_path)
    except OSError:
        return None
    stamp = (status.st_mtime_ns, status.st_size)
    with _lock:
        cached = _maps.get(manifest_path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    items = broker.get_manifest()["items"]
    relpaths = {ident: str(entry["relpath"]) for ident, entry in items.items()}
    with _lock:
        _maps[manifest_path] = (stamp, relpaths)
    return relpaths


def applies() -> bool:
    """True on the dtoolcore versions this cache was written for."""
    return str(getattr(dtoolcore, "__version__", "")).startswith(WRITTEN_FOR)


def install() -> None:
    """Give DiskStorageBroker a manifest-caching ``get_item_abspath`` (idempotent)."""
    if _installed.is_set() or not applies():
        return
    _installed.set()
    original: Callable[[Any, str], str] = DiskStorageBroker.get_item_abspath

    def get_item_abspath(self: Any, identifier: str) -> str:
        manifest_path = str(self.get_manifest_key())
        relpaths = _relpaths(manifest_path, self)
        relpath = relpaths.get(identifier) if relpaths is not None else None
        if relpath is None or relpath_problem(relpath) is not None:
            return original(self, identifier)
        # <dataset>/.dtool/manifest.json -> <dataset>/data, the layout of these versions.
        data = os.path.join(os.path.dirname(os.path.dirname(manifest_path)), "data")
        return os.path.join(data, handle_to_osrelpath(relpath, os.name == "nt"))

    get_item_abspath.__doc__ = original.__doc__
    DiskStorageBroker.get_item_abspath = get_item_abspath
