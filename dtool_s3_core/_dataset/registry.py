"""Finding datasets: registration keys, prefixes and admin metadata, with small caches.

A dataset is registered by ``dtool-<uuid>`` at the bucket root, whose body is the key prefix of
the dataset. Prefixes never change once written, so they are cached for the life of the process.
Admin metadata can change (freezing, renaming), so it is cached for :data:`ADMIN_TTL` seconds only:
long enough that one dtool command, which builds several brokers for the same URI, reads it once.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .. import errors
from .._format import manifest, validate
from .._format.keys import REGISTRATION_PREFIX, UUID_RE, KeyLayout, normalise_prefix
from .._format.uri import object_url
from .._s3.client import S3Client
from ..config import S3Config

logger = logging.getLogger(__name__)

#: Seconds a fetched admin metadata document is reused without asking S3 again.
ADMIN_TTL = 10.0
_TIMESTAMP_KEYS = ("created_at", "frozen_at")


@dataclass(frozen=True)
class DatasetEntry:
    """A registered dataset: where it lives and its admin metadata."""

    uuid: str
    layout: KeyLayout
    admin_metadata: dict[str, Any]


class _Caches:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.prefixes: dict[tuple[str | None, str, str], str] = {}
        self.admin: dict[tuple[str | None, str, str], tuple[float, dict[str, Any] | None]] = {}


_CACHES = _Caches()


def _cache_key(client: S3Client, uuid: str) -> tuple[str | None, str, str]:
    return (client.config.endpoint_url, client.bucket, uuid)


def remember_prefix(client: S3Client, uuid: str, prefix: str) -> None:
    with _CACHES.lock:
        _CACHES.prefixes[_cache_key(client, uuid)] = prefix


def remember_admin(client: S3Client, uuid: str, admin: dict[str, Any] | None) -> None:
    with _CACHES.lock:
        _CACHES.admin[_cache_key(client, uuid)] = (time.monotonic(), admin)


def forget_admin(client: S3Client, uuid: str) -> None:
    with _CACHES.lock:
        _CACHES.admin.pop(_cache_key(client, uuid), None)


def forget_dataset(client: S3Client, uuid: str) -> None:
    """Drop what is cached of a dataset that was deleted (its UUID may be registered again)."""
    with _CACHES.lock:
        _CACHES.prefixes.pop(_cache_key(client, uuid), None)
        _CACHES.admin.pop(_cache_key(client, uuid), None)


def registered_prefix(client: S3Client, uuid: str) -> str | None:
    """Return the prefix recorded in ``dtool-<uuid>``, or None if the dataset is not registered."""
    key = _cache_key(client, uuid)
    with _CACHES.lock:
        if key in _CACHES.prefixes:
            return _CACHES.prefixes[key]
    found = client.get_bytes(REGISTRATION_PREFIX + uuid, limit=validate.LIMITS["registration"])
    if found is None:
        return None
    try:
        prefix = validate.check_prefix(found[0])
    except validate.Invalid as exc:
        where = object_url(client.bucket, REGISTRATION_PREFIX + uuid)
        raise errors.damaged(where, str(exc)) from exc
    remember_prefix(client, uuid, prefix)
    return prefix


def parse_admin_metadata(body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """Return admin metadata from the ``dtool`` object: the JSON body, else its headers.

    dtool-s3 before 0.4.0 wrote headers only; their timestamps come back as strings.

    :raises DatasetStateError: with what is wrong, to be prefixed by the object's URL
    """
    if body.strip():
        try:
            data = validate.parse_json(body, "admin")
        except validate.Invalid as exc:
            raise errors.DatasetStateError(str(exc)) from exc
        if not isinstance(data, dict):
            raise errors.DatasetStateError("is not a JSON object")
        return data
    admin: dict[str, Any] = dict(headers)
    for name in _TIMESTAMP_KEYS:
        if name in admin:
            try:
                admin[name] = float(admin[name])
            except ValueError as exc:
                raise errors.DatasetStateError(f"has a {name} that is not a number") from exc
    return admin


def admin_headers(admin: dict[str, Any]) -> dict[str, str]:
    """Return the ``x-amz-meta-*`` copy of admin metadata that dtool-s3 0.14.1 reads.

    Header values must be ASCII; other characters are written as JSON escapes there (the JSON
    body, which this package reads, keeps them intact).
    """
    headers = {}
    for name, value in admin.items():
        text = str(value)
        headers[name] = text if text.isascii() else json.dumps(text)[1:-1]
    return headers


def read_admin_metadata(
    client: S3Client, layout: KeyLayout, fresh: bool = False
) -> dict[str, Any] | None:
    """Return the admin metadata of a dataset, or None if it has none (not a dataset)."""
    key = _cache_key(client, layout.uuid)
    if not fresh:
        with _CACHES.lock:
            cached = _CACHES.admin.get(key)
        if cached and time.monotonic() - cached[0] < ADMIN_TTL:
            return None if cached[1] is None else dict(cached[1])
    found = client.get_bytes(layout.admin_metadata, limit=validate.LIMITS["admin"])
    if found is None:
        forget_admin(client, layout.uuid)
        return None
    try:
        admin = parse_admin_metadata(*found)
        manifest.check_admin(admin, layout.uuid)
    except errors.DatasetStateError as exc:
        where = object_url(client.bucket, layout.admin_metadata)
        raise errors.damaged(where, str(exc), object_url(client.bucket, layout.uuid)) from exc
    remember_admin(client, layout.uuid, admin)
    return dict(admin)


def write_admin_metadata(client: S3Client, layout: KeyLayout, admin: dict[str, Any]) -> None:
    """Store admin metadata as JSON body and as headers (both are part of the format)."""
    body = json.dumps(admin).encode("utf-8")
    client.put_bytes(layout.admin_metadata, body, admin_headers(admin))
    remember_admin(client, layout.uuid, admin)


def list_datasets(config: S3Config) -> list[DatasetEntry]:
    """Return every readable dataset registered in the bucket of ``config``, sorted by UUID.

    One listing of ``dtool-`` per 1000 datasets, then concurrently one GET per dataset (two for
    a dataset whose prefix differs from the configured one). Skipped: root keys that are not
    ``dtool-<uuid>``, registrations without admin metadata (a dataset being created or half
    deleted) and, with a warning, datasets whose registration or admin metadata is damaged, so
    that one broken dataset (or another tool's object) never hides the rest of the bucket.
    """
    client = S3Client(config)
    configured_prefix = normalise_prefix(config.dataset_prefix)
    registrations = [
        info
        for info in client.list_objects(REGISTRATION_PREFIX)
        if UUID_RE.match(info.key[len(REGISTRATION_PREFIX) :])
    ]
    if not registrations:
        return []

    def fetch(size: int, uuid: str) -> DatasetEntry | None:
        try:
            return _fetch_entry(client, uuid, size, configured_prefix)
        except errors.DatasetStateError as exc:
            logger.warning("skipping a damaged dataset: %s", exc)
            return None

    workers = max(1, min(client.config.max_concurrency, len(registrations)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dtool-s3-ls") as pool:
        entries = list(
            pool.map(
                lambda info: fetch(info.size, info.key[len(REGISTRATION_PREFIX) :]),
                registrations,
            )
        )
    return sorted((e for e in entries if e is not None), key=lambda e: e.uuid)


def _fetch_entry(
    client: S3Client, uuid: str, size: int, configured_prefix: str
) -> DatasetEntry | None:
    prefix = _guess_prefix(client, uuid, size, configured_prefix)
    layout = KeyLayout(uuid, prefix)
    admin = read_admin_metadata(client, layout, fresh=True)
    if admin is None and prefix == configured_prefix and size:
        actual = registered_prefix(client, uuid)
        if actual is not None and actual != prefix:
            layout = KeyLayout(uuid, actual)
            admin = read_admin_metadata(client, layout, fresh=True)
    elif admin is not None:
        remember_prefix(client, uuid, prefix)
    return None if admin is None else DatasetEntry(uuid, layout, admin)


def _guess_prefix(client: S3Client, uuid: str, size: int, configured: str) -> str:
    if size == 0:
        remember_prefix(client, uuid, "")
        return ""
    with _CACHES.lock:
        cached = _CACHES.prefixes.get(_cache_key(client, uuid))
    if cached is not None:
        return cached
    # The registration body is the prefix: when its length matches the configured prefix, try
    # that first and spare a GET per dataset; list_datasets falls back on a miss.
    if size == len(configured.encode("utf-8")):
        return configured
    prefix = registered_prefix(client, uuid)
    return prefix or ""
