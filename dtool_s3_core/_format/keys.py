"""The on-bucket key layout of dtool-s3 0.14.1, and item handle encoding. Pure: no I/O.

For a dataset with UUID ``U`` and prefix ``P`` in bucket ``B``::

    dtool-U                          registration key at the bucket root; body = P
    P U/dtool                        admin metadata (JSON body and x-amz-meta-* headers)
    P U/structure.json               this layout, with storage_broker_version
    P U/README.txt                   a text explaining the layout
    P U/README.yml                   the dataset README (backups README.yml-<timestamp>)
    P U/manifest.json                written at freeze
    P U/data/<sha1(relpath)>         items; x-amz-meta-handle = base64(relpath), -checksum = MD5
    P U/fragments/<id>.<key>.json    item metadata of proto datasets
    P U/overlays/<name>.json         P U/annotations/<name>.json     P U/tags/<tag>
    P U/http_manifest.json           written by publish
    P U/freezing                     only while a freeze runs (dtool-s3-core; ignored by others)

``P`` and ``U`` are concatenated with no separator, exactly as dtool-s3 does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import Any

REGISTRATION_PREFIX = "dtool-"
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
IDENTIFIER_RE = re.compile(r"^[0-9a-f]{40}$")
#: The version written into structure.json: dtool-s3 reads handles as base64 from 0.14.0 on.
STORAGE_BROKER_VERSION = "0.14.1"


def structure_parameters(uuid: str) -> dict[str, Any]:
    """Return the structure.json content of a dataset (same keys as dtool-s3 0.14.1)."""
    return {
        "admin_metadata_key_suffix": "dtool",
        "annotations_key_infix": "annotations",
        "data_key_infix": "data",
        "dataset_readme_key_suffix": "README.yml",
        "dataset_registration_key": REGISTRATION_PREFIX + uuid,
        "dtool_readme_key_suffix": "README.txt",
        "fragment_key_infix": "fragments",
        "http_manifest_key": "http_manifest.json",
        "manifest_key_suffix": "manifest.json",
        "overlays_key_infix": "overlays",
        "storage_broker_version": STORAGE_BROKER_VERSION,
        "structure_key_suffix": "structure.json",
        "tags_key_infix": "tags",
    }


DTOOL_README_TXT = """README
======

This is a dtool dataset stored in S3-compatible object storage (written by dtool-s3-core).

Content provided during the dataset creation process
----------------------------------------------------

Dataset descriptive metadata: README.yml
Dataset items: data/<sha1 of the item's relative path>; the object metadata holds
the relative path (base64, key "handle") and the MD5 of the content (key "checksum").

Automatically generated files and directories
---------------------------------------------

This file: README.txt
Administrative metadata describing the dataset: dtool
Structural metadata describing the dataset: structure.json
Structural metadata describing the data items: manifest.json
Per item descriptive metadata: overlays/ (fragments/ before the dataset is frozen)
Dataset key/value pairs metadata: annotations/
Dataset tags metadata: tags/
Registration of the dataset and its key prefix: dtool-<uuid> at the bucket root
"""


def identifier(handle: str) -> str:
    """Return the item identifier: SHA-1 hex digest of the UTF-8 relpath (dtoolcore's rule)."""
    return hashlib.sha1(handle.encode("utf-8")).hexdigest()


def encode_handle(handle: str) -> str:
    """Return the ``x-amz-meta-handle`` value: standard base64 of the UTF-8 relpath."""
    return base64.b64encode(handle.encode("utf-8")).decode("ascii")


def decode_handle(value: str, base64_handles: bool) -> str:
    """Return the relpath stored in ``x-amz-meta-handle``.

    :param value: the header value
    :param base64_handles: False for datasets written by dtool-s3 older than 0.14.0 (raw relpaths)
    """
    if not base64_handles:
        return value
    try:
        return base64.b64decode(value.encode("ascii"), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        return value


def uses_base64_handles(structure: dict[str, Any] | None) -> bool:
    """Return whether a structure.json says handles are base64 (version >= 0.14.0)."""
    if not structure or "storage_broker_version" not in structure:
        return structure is None
    parts = re.findall(r"\d+", str(structure["storage_broker_version"]))[:3]
    numbers = tuple(int(p) for p in parts) + (0,) * (3 - len(parts))
    return numbers >= (0, 14, 0)


def parse_fragment_key(name: str) -> tuple[str, str] | None:
    """Split ``<40-hex id>.<metadata key>.json`` into (identifier, key); dotted keys survive."""
    if not name.endswith(".json") or len(name) < 47 or name[40] != ".":
        return None
    ident = name[:40]
    if not IDENTIFIER_RE.match(ident):
        return None
    return ident, name[41:-5]


@dataclass(frozen=True)
class KeyLayout:
    """All keys of one dataset, given its UUID and its effective prefix."""

    uuid: str
    prefix: str

    @property
    def registration_key(self) -> str:
        return REGISTRATION_PREFIX + self.uuid

    @property
    def root(self) -> str:
        """The key prefix every dataset object starts with (``P + U + '/'``)."""
        return f"{self.prefix}{self.uuid}/"

    def key(self, suffix: str) -> str:
        return self.root + suffix

    @property
    def admin_metadata(self) -> str:
        return self.key("dtool")

    @property
    def structure(self) -> str:
        return self.key("structure.json")

    @property
    def dtool_readme(self) -> str:
        return self.key("README.txt")

    @property
    def readme(self) -> str:
        return self.key("README.yml")

    @property
    def manifest(self) -> str:
        return self.key("manifest.json")

    @property
    def freeze_marker(self) -> str:
        """Present while a freeze runs (not part of dtool-s3's format; its readers ignore it)."""
        return self.key("freezing")

    @property
    def http_manifest(self) -> str:
        return self.key("http_manifest.json")

    @property
    def data_prefix(self) -> str:
        return self.key("data/")

    @property
    def fragments_prefix(self) -> str:
        return self.key("fragments/")

    @property
    def overlays_prefix(self) -> str:
        return self.key("overlays/")

    @property
    def annotations_prefix(self) -> str:
        return self.key("annotations/")

    @property
    def tags_prefix(self) -> str:
        return self.key("tags/")

    def item(self, ident: str) -> str:
        return self.data_prefix + ident

    def fragment(self, ident: str, metadata_key: str) -> str:
        return f"{self.fragments_prefix}{ident}.{metadata_key}.json"

    def overlay(self, name: str) -> str:
        return f"{self.overlays_prefix}{name}.json"

    def annotation(self, name: str) -> str:
        return f"{self.annotations_prefix}{name}.json"

    def tag(self, tag: str) -> str:
        return self.tags_prefix + tag


def json_names(keys: list[str], prefix: str) -> list[str]:
    """Return the names of ``<prefix><name>.json`` keys; names with dots are kept whole."""
    return [k[len(prefix) : -5] for k in keys if k.startswith(prefix) and k.endswith(".json")]


def normalise_prefix(prefix: str) -> str:
    """Return the prefix new datasets are written under: non-empty prefixes end with '/'.

    dtool-s3 fuses ``u/alice`` with the UUID (``u/alice<uuid>/``), which IAM policies on
    ``u/alice/*`` do not match; the registration key records the effective prefix, so readers,
    dtool-s3 included, find the dataset either way.
    """
    if prefix and not prefix.endswith("/"):
        return prefix + "/"
    return prefix
