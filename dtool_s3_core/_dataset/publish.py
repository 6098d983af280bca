"""Publishing a dataset over HTTP(S) for dtool-http: ``http_manifest.json`` and access URLs.

Without an expiry every object a reader needs gets a ``public-read`` ACL and plain URLs; with
``DTOOL_S3_PUBLISH_EXPIRY`` (or ``publish_expiry``) nothing becomes public and every URL is a
SigV4 presigned URL. The expiry is read when publishing, as dtool-s3 did. The access URL is the
URL of ``<prefix><uuid>``; with presigning the query of the http manifest's URL is appended,
which is how dtool-http finds ``http_manifest.json``.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from .. import errors
from .._format.uri import object_url
from .._s3.client import S3Client
from ..config import publish_expiry_now
from .dataset import S3Dataset


def http_enable(dataset: S3Dataset) -> str:
    """Publish a frozen dataset; return the access URL dtool-http opens.

    :raises DatasetStateError: if the dataset is not frozen
    :raises PublishError: if the server refuses public ACLs (with the presigning hint)
    """
    client, layout = dataset.client, dataset.layout
    admin = dataset.require_admin()
    if admin.get("type") != "dataset":
        raise errors.DatasetStateError(
            f"{object_url(client.bucket, layout.uuid)} is a proto dataset: freeze it before "
            "publishing"
        )
    expiry = publish_expiry_now(client.config)
    overlays = {name: layout.overlay(name) for name in dataset.overlay_names()}
    annotations = {name: layout.annotation(name) for name in dataset.annotation_names()}
    items = {ident: layout.item(ident) for ident in dataset.entries()}
    keys = [
        layout.readme,
        layout.manifest,
        *overlays.values(),
        *annotations.values(),
        *items.values(),
    ]
    if expiry is None:
        _make_public(client, keys)
        url = client.public_url
    else:

        def url(key: str) -> str:
            return client.presign_get(key, expiry)

    http_manifest = {
        "admin_metadata": admin,
        "item_urls": {ident: url(key) for ident, key in items.items()},
        "overlays": {name: url(key) for name, key in overlays.items()},
        "annotations": {name: url(key) for name, key in annotations.items()},
        "tags": dataset.tags(),
        "readme_url": url(layout.readme),
        "manifest_url": url(layout.manifest),
    }
    client.put_bytes(layout.http_manifest, json.dumps(http_manifest, indent=2).encode("utf-8"))
    access_url = client.public_url(layout.root.rstrip("/"))
    if expiry is None:
        _make_public(client, [layout.http_manifest])
        if not client.anonymous_readable(layout.http_manifest):
            raise errors.PublishError(
                _acl_hint(client, "accepted the ACL but still refuses anonymous reads")
            )
        return access_url
    return access_url + "?" + urlsplit(url(layout.http_manifest)).query


def _make_public(client: S3Client, keys: list[str]) -> None:
    def grant(key: str) -> None:
        try:
            client.call("put_object_acl", key, ACL="public-read")
        except errors.DtoolS3Error as exc:
            raise errors.PublishError(
                _acl_hint(client, f"refused a public-read ACL ({exc})")
            ) from exc

    workers = max(1, min(client.config.max_concurrency, len(keys)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dtool-s3-acl") as pool:
        list(pool.map(grant, keys))


def _acl_hint(client: S3Client, what: str) -> str:
    return (
        f"cannot publish in bucket '{client.bucket}': the server {what}; publish with presigned "
        "URLs instead by setting DTOOL_S3_PUBLISH_EXPIRY=<seconds> (at most 604800)"
    )
