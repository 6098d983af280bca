"""dtool datasets as Airflow Assets.

A dataset's Asset URI is its dtool URI, ``s3://<bucket>/<uuid>`` (``file://...`` for a local
dataset): what users pass to ``dtool ls``, stable per location. A copy in another bucket is another
Asset with the same UUID. The URI is known only once the task has run, so operators announce
events through an :class:`~airflow.sdk.AssetAlias` (default :data:`DEFAULT_ASSET_ALIAS`); downstream
DAGs schedule on the alias, or on a concrete ``Asset("s3://bucket/<uuid>")``.

Event extras carry facts about the dataset only (name, uuid, item count, size, frozen_at, and the
source for copies); never settings or credentials, which would end up in the metadata database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from airflow.sdk import Asset, AssetAlias

#: The alias create, copy and freeze operators emit to unless told otherwise.
DEFAULT_ASSET_ALIAS = "dtool-s3"


def dataset_asset(uri: str) -> Asset:
    """Return the Asset of the dataset at ``uri``."""
    return Asset(uri=uri)


def event_extra(
    *, name: str, uuid: str, item_count: int, size_in_bytes: int, **more: Any
) -> dict[str, Any]:
    """Return an event extra: the fixed facts, then ``more`` (None values dropped)."""
    extra: dict[str, Any] = {
        "name": name,
        "uuid": uuid,
        "item_count": item_count,
        "size_in_bytes": size_in_bytes,
    }
    extra.update({key: value for key, value in more.items() if value is not None})
    return extra


def emit(
    context: Mapping[str, Any], outlets: Iterable[Any], uri: str, extra: dict[str, Any]
) -> None:
    """Record an event for the dataset at ``uri`` on every AssetAlias outlet.

    An ``Asset`` outlet with the same URI gets the extra as well (the event itself is recorded
    by Airflow for every declared Asset).
    """
    asset = dataset_asset(uri)
    events = context["outlet_events"]
    for outlet in outlets:
        if isinstance(outlet, AssetAlias):
            events[outlet].add(asset, extra=extra)
        elif isinstance(outlet, Asset) and outlet.uri == asset.uri:
            events[outlet].extra = extra
