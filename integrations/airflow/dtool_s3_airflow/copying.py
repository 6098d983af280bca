"""Copy a frozen dataset between two connections (two endpoints, two sets of credentials).

dtool_s3_core's settings are keyed by bucket name. When the source and destination buckets have
different names, both connections are applied at once and :func:`dtool_s3_core.copy_dataset` does
the work (server-side when both sides turn out to be one service, streamed otherwise).

Buckets of the *same name* on two endpoints cannot be told apart by one overlay. Then each side's
storage broker is *constructed* inside its own connection's overlay: a broker resolves its
settings when it is built and keeps them (its background threads included), so the two brokers
talk to their own endpoints while the items stream from one to the other, with no overlay active
and nothing staged twice on disk. Those steps are dtoolcore's own ``copy`` / ``copy_resume``
(same metadata, same order), split so that each side is opened in its scope; dtoolcore is pinned
by dtool_s3_core, so the private helpers used here cannot change under us.

Either way items are downloaded into a per-copy temporary cache directory, removed afterwards.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from typing import Any

import dtoolcore

import dtool_s3_core
from dtool_s3_core.errors import DatasetStateError

from .hooks import ConnectionSettings, buckets_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CopyResult:
    """Where the copy landed and what it holds."""

    uri: str
    name: str
    uuid: str
    item_count: int
    size_in_bytes: int
    resumed: bool


def copy_dataset(
    source_uri: str,
    dest_base_uri: str,
    source: ConnectionSettings,
    dest: ConnectionSettings,
    resume: bool = False,
) -> CopyResult:
    """Copy the frozen dataset at ``source_uri`` to ``dest_base_uri``; the UUID is kept.

    :param source: settings for the source's bucket (ignored for a local source)
    :param dest: settings for the destination's bucket (ignored for a local destination)
    :param resume: finish an interrupted copy (a proto dataset with the same UUID at the
                   destination); a destination that is already frozen is returned as it is
    :raises DatasetStateError: if the destination exists and ``resume`` is False
    """
    with tempfile.TemporaryDirectory(prefix="dtool-s3-airflow-") as cache:
        with source.applied_to(source_uri, cache_directory=cache):
            src = dtoolcore.DataSet.from_uri(source_uri)
        try:
            with dest.applied_to(dest_base_uri):
                dest_uri = str(dtoolcore._generate_uri(src._admin_metadata, dest_base_uri))
                state = _state(dest_uri)
            if state is not None and not resume:
                raise DatasetStateError(
                    f"{dest_uri} already exists ({_describe(state)}): set resume=True to finish "
                    "or reuse it, or delete it first"
                )
            if state == "dataset":
                log.info("%s is already a complete copy; nothing to do", dest_uri)
            elif set(buckets_of([source_uri])) & set(buckets_of([dest_base_uri])):
                _copy_between_brokers(src, dest_base_uri, dest_uri, dest, state is not None)
            else:
                with (
                    source.applied_to(source_uri, cache_directory=cache),
                    dest.applied_to(dest_base_uri),
                ):
                    dtool_s3_core.copy_dataset(source_uri, dest_base_uri, resume=state is not None)
            return _result(src, dest_uri, resumed=state is not None)
        finally:
            # Read-ahead downloads may still be writing into the cache that is about to go.
            _close(src)


def _copy_between_brokers(
    src: dtoolcore.DataSet,
    dest_base_uri: str,
    dest_uri: str,
    dest: ConnectionSettings,
    resume: bool,
) -> None:
    frozen_at = src._admin_metadata["frozen_at"]
    with dest.applied_to(dest_base_uri):
        if resume:
            log.info("resuming the interrupted copy at %s", dest_uri)
            proto = dtoolcore.ProtoDataSet.from_uri(dest_uri)
        else:
            proto = dtoolcore._copy_create_proto_dataset(src, dest_base_uri)
    try:
        dtoolcore._copy_content(src, proto)
        proto._admin_metadata["frozen_at"] = frozen_at
        proto.freeze()
    finally:
        _close(proto)


def _state(uri: str) -> str | None:
    broker = dtoolcore._get_storage_broker(uri, None)
    if not broker.has_admin_metadata():
        return None
    state: str = broker.get_admin_metadata().get("type", "protodataset")
    return state


def _describe(state: str) -> str:
    return "a frozen copy" if state == "dataset" else "an interrupted copy"


def _result(src: dtoolcore.DataSet, uri: str, resumed: bool) -> CopyResult:
    items = src._manifest["items"]
    return CopyResult(
        uri=uri,
        name=str(src.name),
        uuid=str(src.uuid),
        item_count=len(items),
        size_in_bytes=sum(int(item["size_in_bytes"]) for item in items.values()),
        resumed=resumed,
    )


def _close(dataset: Any) -> None:
    close = getattr(dataset._storage_broker, "close", None)
    if close is not None:
        close()
