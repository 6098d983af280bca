"""Deleting a whole dataset (frozen, proto or half deleted) with every object it has.

The order makes an interruption harmless: the admin metadata (``P U/dtool``, what makes a
registration a dataset in every listing, dtool-s3's included) goes first, so a half-deleted
dataset is never listed as a valid one; the registration ``dtool-U`` (the only record of the
prefix) goes last, so a second run still finds what is left and finishes the job.

A dataset under S3 Object Lock (a retention that has not ended, or a legal hold) is refused
before anything is deleted: in a versioned bucket a plain delete would only hide the locked
versions behind delete markers, and nothing here ever tries to bypass a retention.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .. import errors
from .._dataset import registry
from .._dataset.dataset import S3Dataset
from .._format.keys import KeyLayout
from .._format.uri import object_url
from .._s3.client import ObjectInfo, S3Client
from .._s3.multipart import abort_upload, unfinished_uploads


@dataclass(frozen=True)
class DeletionPlan:
    """What deleting one dataset removes, as found just before.

    :param state: ``frozen``, ``proto``, ``half-deleted`` (no admin metadata left) or
                  ``damaged`` (admin metadata that cannot be read)
    :param name: the dataset's name, None when its admin metadata are gone or damaged
    :param objects: every object, the registration included
    :param uploads: multipart uploads in progress under the dataset's prefix
    """

    uri: str
    uuid: str
    name: str | None
    state: str
    items: int
    item_bytes: int
    objects: int
    uploads: int
    layout: KeyLayout


def plan_deletion(dataset: S3Dataset) -> DeletionPlan:
    """Look at the dataset ``dataset`` names, and say what deleting it would remove.

    :raises ConfigurationError: if the URI names a bucket, or something that is no dataset UUID
    :raises ObjectNotFound: if there is no dataset (nor anything left of one) at the URI
    :raises DatasetStateError: if any of its objects is locked (retention or legal hold)
    """
    _check_uri(dataset)
    client = dataset.client
    registered = registry.registered_prefix(client, dataset.uuid) is not None
    layout = dataset.layout
    try:
        admin = dataset.admin_metadata(fresh=True)
    except errors.DatasetStateError:
        admin, state = None, "damaged"
    else:
        state = "half-deleted" if admin is None else _state(admin)
    listed = list(client.list_objects(layout.root))
    uploads = unfinished_uploads(client, layout.root)
    if not (registered or listed or uploads):
        base = object_url(dataset.bucket)
        raise errors.ObjectNotFound(
            f"no dataset at {dataset.uri}: check the UUID ('dtool ls {base}' lists the datasets)"
        )
    _refuse_locked(dataset, listed)
    data = [info for info in listed if info.key.startswith(layout.data_prefix)]
    return DeletionPlan(
        uri=dataset.uri,
        uuid=dataset.uuid,
        name=None if admin is None else str(admin.get("name", "")),
        state=state,
        items=len(data),
        item_bytes=sum(info.size for info in data),
        objects=len(listed) + (1 if registered else 0),
        uploads=len(uploads),
        layout=layout,
    )


def delete(dataset: S3Dataset, plan: DeletionPlan) -> None:
    """Delete every object of the dataset of ``plan`` and abort its unfinished uploads.

    What was written there since the plan was made goes as well: the prefix is listed again.
    """
    client, layout = dataset.client, plan.layout
    client.delete_many([layout.admin_metadata])
    registry.forget_admin(client, plan.uuid)
    for key, upload_id in unfinished_uploads(client, layout.root):
        abort_upload(client, key, upload_id)
    client.delete_many([info.key for info in client.list_objects(layout.root)])
    client.delete_many([layout.registration_key])
    registry.forget_dataset(client, plan.uuid)


def _check_uri(dataset: S3Dataset) -> None:
    if dataset.is_uuid:
        return
    base = object_url(dataset.bucket)
    if not dataset.uuid:
        raise errors.ConfigurationError(
            f"{base} is a bucket, not a dataset: name one dataset as {base}/<uuid> "
            f"('dtool ls {base}' lists them)"
        )
    raise errors.ConfigurationError(
        f"{dataset.uri} is not a dataset URI (a dataset's UUID belongs after the bucket): "
        f"'dtool ls {base}' lists the datasets with their URIs"
    )


def _state(admin: Mapping[str, Any]) -> str:
    return "frozen" if admin.get("type") == "dataset" else "proto"


# -- Object Lock -----------------------------------------------------------------------------------


def _refuse_locked(dataset: S3Dataset, listed: list[ObjectInfo]) -> None:
    """Refuse the deletion if an object of the dataset is under a retention or a legal hold.

    Only a bucket with Object Lock enabled can hold locked objects: one request says so, and
    only then is every object asked (HEAD). Where the bucket's setting cannot be read (no
    permission, a server without Object Lock), the admin metadata object alone is asked.
    """
    client = dataset.client
    try:
        answer = client.call("get_object_lock_configuration")
    except errors.ObjectNotFound:
        return
    except errors.DtoolS3Error:
        keys = [dataset.layout.admin_metadata]
    else:
        enabled = answer.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled")
        if enabled != "Enabled":
            return
        keys = [info.key for info in listed]
    locks = _locks(client, keys)
    if locks:
        key, why = locks[0]
        more = f" (and {len(locks) - 1} more of its objects)" if len(locks) > 1 else ""
        raise errors.DatasetStateError(
            f"{dataset.uri} is locked: {object_url(client.bucket, key)} {why}{more}; a locked "
            "dataset cannot be deleted until every retention has ended and every legal hold is "
            "removed"
        )


def _locks(client: S3Client, keys: Iterable[str]) -> list[tuple[str, str]]:
    """(key, why) of each locked object among ``keys`` (concurrent HEADs), in key order."""
    keys = sorted(keys)
    if not keys:
        return []
    now = datetime.now(UTC)

    def lock_of(key: str) -> tuple[str, str] | None:
        head = client.exists(key)
        why = None if head is None else _lock_reason(head, now)
        return None if why is None else (key, why)

    workers = max(1, min(client.config.max_concurrency, len(keys)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dtool-s3-rm") as pool:
        return [found for found in pool.map(lock_of, keys) if found is not None]


def _lock_reason(head: Mapping[str, Any], now: datetime) -> str | None:
    """Why a HEAD response's object cannot be deleted now, or None if nothing locks it."""
    if head.get("ObjectLockLegalHoldStatus") == "ON":
        return "is under a legal hold"
    mode, until = head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate")
    if mode and isinstance(until, datetime) and until > now:
        return f"is under {mode} retention until {until.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    return None
