"""dtool's documents and their typed shapes: manifest, admin metadata, item metadata. Pure.

The shapes are what dtoolcore (3.17 to 3.19) and dtool-s3 0.14.1 write; the parsers check a
document read from outside against them before any value in it is used (see :mod:`.validate`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from .keys import IDENTIFIER_RE, encode_handle, identifier
from .validate import MD5_RE, Invalid, is_number, name_problem, relpath_problem, require, shown


class ManifestItem(TypedDict):
    """One item of a manifest's ``items``, keyed there by its identifier."""

    relpath: str
    size_in_bytes: int
    hash: str
    utc_timestamp: float


class Manifest(TypedDict):
    """A dataset's ``manifest.json``."""

    dtoolcore_version: str
    hash_function: str
    items: dict[str, ManifestItem]


class AdminMetadata(TypedDict, total=False):
    """A dataset's ``dtool`` admin metadata (the keys dtool writes; others are kept as they are)."""

    uuid: str
    name: str
    type: str
    creator_username: str
    created_at: float
    frozen_at: float
    dtoolcore_version: str


def item_metadata(relpath: str, md5: str) -> dict[str, str]:
    """The S3 user metadata of an item object: base64 handle and MD5 (what dtool-s3 reads)."""
    return {"handle": encode_handle(relpath), "checksum": md5}


def manifest_document(items: Mapping[str, ManifestItem]) -> Manifest:
    """A dtool manifest of these items (keys as dtoolcore writes them)."""
    from dtoolcore import __version__ as dtoolcore_version

    return {
        "dtoolcore_version": dtoolcore_version,
        "hash_function": "md5sum_hexdigest",
        "items": dict(items),
    }


def check_admin(admin: Mapping[str, Any], uuid: str) -> None:
    """Check admin metadata read for the dataset ``uuid``.

    :raises Invalid: if the UUID, name, type or a timestamp is not what dtool writes
    """
    require(admin.get("uuid") == uuid, f"names UUID {shown(admin.get('uuid'))}, not {uuid}")
    problem = name_problem(admin.get("name"))
    require(problem is None, f"has a name {shown(admin.get('name'))} that {problem}")
    kind = admin.get("type")
    require(kind in {"protodataset", "dataset"}, f"has an unknown type {shown(kind)}")
    for key in ("created_at", "frozen_at"):
        if key in admin:
            require(is_number(admin[key]), f"has a {key} that is not a number")
    require(kind != "dataset" or "frozen_at" in admin, "is frozen but has no frozen_at")


@dataclass(frozen=True)
class Entry:
    """One item of a manifest, checked."""

    identifier: str
    relpath: str
    size: int
    md5: str
    timestamp: float

    def as_dict(self) -> ManifestItem:
        """The manifest form dtoolcore uses (``item_properties`` without the identifier)."""
        return {
            "relpath": self.relpath,
            "size_in_bytes": self.size,
            "hash": self.md5,
            "utc_timestamp": self.timestamp,
        }


def parse_manifest(manifest: Any) -> dict[str, Entry]:
    """Return the checked items of a parsed manifest by identifier.

    Each identifier must be the SHA-1 of its relpath, so no entry can point at another item's
    object or at a path of its choosing.

    :raises Invalid: naming the first bad entry
    """
    require(isinstance(manifest, dict), "is not a JSON object")
    items = manifest.get("items")
    require(isinstance(items, dict), "has no 'items' object")
    require(
        manifest.get("hash_function", "md5sum_hexdigest") == "md5sum_hexdigest",
        f"uses hash function {shown(manifest.get('hash_function'))}, not md5sum_hexdigest",
    )
    entries: dict[str, Entry] = {}
    for ident, item in items.items():
        entries[ident] = _entry(ident, item)
    return entries


def _entry(ident: str, item: Any) -> Entry:
    where = f"item {shown(ident)}"
    require(bool(IDENTIFIER_RE.match(ident)), f"has an {where} that is not 40 hex digits")
    require(isinstance(item, dict), f"has an {where} that is not a JSON object")
    relpath = item.get("relpath")
    problem = relpath_problem(relpath)
    if problem is not None:
        # The fix a caller is told ("give a relative path") is no advice about a manifest.
        raise Invalid(f"has an {where} whose relpath {shown(relpath)} {problem.split(':')[0]}")
    require(identifier(relpath) == ident, f"has an {where} that is not the SHA-1 of its relpath")
    size = item.get("size_in_bytes")
    require(
        isinstance(size, int) and not isinstance(size, bool) and size >= 0,
        f"has an {where} whose size_in_bytes is not a whole number",
    )
    md5 = item.get("hash")
    require(
        isinstance(md5, str) and bool(MD5_RE.match(md5)),
        f"has an {where} whose hash is not an MD5",
    )
    timestamp = item.get("utc_timestamp")
    require(is_number(timestamp), f"has an {where} whose utc_timestamp is not a number")
    return Entry(ident, relpath, size, md5, float(timestamp))
