"""The dtool S3 hook: every S3 and dtool call of the provider, with one connection's settings.

A connection is either of type ``dtools3`` (or its first name ``dtool_s3``, see
:mod:`dtool_s3_airflow.connection`) or an existing ``aws`` connection of the amazon provider (see
:mod:`dtool_s3_airflow._aws`); a ``dtools3`` connection may also name one in
``extra.aws_conn_id`` and add to it. Operators,
the sensor and the trigger only template their arguments and call the methods here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from airflow.sdk import BaseHook, Connection

import dtool_s3_core
from dtool_s3_core import CopyResult, S3Config

from ._aws import aws_settings
from ._probe import probe
from .assets import event_extra
from .connection import ConnectionSettings, is_s3, text
from .provider_info import ALIAS_CONN_TYPE, ALIAS_HOOK_NAME, CONN_TYPE, UI_FIELD_BEHAVIOUR

DEFAULT_CONN_ID = "dtool_s3_default"
log = logging.getLogger(__name__)

#: A connection with one of (connection, its decoded extra).
_Looked = tuple[Connection, Mapping[str, Any]]


def settings_of(own: _Looked, linked: _Looked | None = None) -> ConnectionSettings:
    """The settings of a connection and of the ``aws`` connection it links to, if any."""
    conn, extra = own
    if conn.conn_type == "aws":
        return aws_settings(conn, extra)
    settings = ConnectionSettings.from_connection(conn, extra)
    return settings if linked is None else settings.over(aws_settings(*linked))


class DtoolS3Hook(BaseHook):
    """Access dtool datasets in S3 with the settings of one ``dtools3`` or ``aws`` connection.

    :param dtool_s3_conn_id: the Airflow connection id
    """

    conn_name_attr = "dtool_s3_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONN_TYPE
    hook_name = "dtool S3"

    def __init__(self, dtool_s3_conn_id: str = DEFAULT_CONN_ID) -> None:
        super().__init__()
        self.dtool_s3_conn_id = dtool_s3_conn_id

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The connection form for UIs that ask the hook (the same as the provider info's)."""
        return {
            "hidden_fields": list(UI_FIELD_BEHAVIOUR["hidden-fields"]),
            "relabeling": dict(UI_FIELD_BEHAVIOUR["relabeling"]),
            "placeholders": dict(UI_FIELD_BEHAVIOUR["placeholders"]),
        }

    # -- settings --------------------------------------------------------------------------------

    @cached_property
    def settings(self) -> ConnectionSettings:
        """The connection's settings, looked up (and a role assumed) once per hook."""
        conn = self.get_connection(self.dtool_s3_conn_id)
        own = (conn, conn.extra_dejson)
        linked_id = _linked_id(own)
        linked = None
        if linked_id is not None:
            conn = self.get_connection(linked_id)
            linked = (conn, conn.extra_dejson)
        return _noted(settings_of(own, linked))

    @classmethod
    async def for_trigger(cls, conn_id: str) -> DtoolS3Hook:
        """A hook whose settings are looked up without blocking the event loop (for triggers)."""
        own = await _alook(conn_id)
        linked_id = _linked_id(own)
        linked = await _alook(linked_id) if linked_id is not None else None
        hook = cls(conn_id)
        # AssumeRole is a blocking request.
        hook.settings = _noted(await asyncio.to_thread(settings_of, own, linked))
        return hook

    def get_conn(self) -> ConnectionSettings:
        return self.settings

    def s3_config(self, location: str) -> S3Config | None:
        """The full configuration of an ``s3://`` location's bucket; None for a local path."""
        if not is_s3(location):
            return None
        return self.settings.config(dtool_s3_core.bucket_of(location))

    @contextmanager
    def configured(self, *locations: str, **settings: Any) -> Iterator[None]:
        """Apply this connection to the buckets of ``locations`` for the ``with`` block.

        The connection is only looked up if one of the locations is an ``s3://`` URI.
        """
        if not any(is_s3(location) for location in locations):
            yield
            return
        with self.settings.applied_to(*locations, **settings):
            yield

    def test_connection(self) -> tuple[bool, str]:
        """The connection form's Test button: one HeadBucket (``extra.test_bucket``) or
        ListBuckets request; the answer says which endpoint, what failed and how to fix it."""
        conn = self.get_connection(self.dtool_s3_conn_id)
        return probe(
            lambda: self.settings, text(conn.extra_dejson.get("test_bucket")), conn.password
        )

    # -- datasets --------------------------------------------------------------------------------

    def create_dataset(
        self,
        name: str,
        base_uri: str,
        *,
        source_dir: str | None = None,
        files: Mapping[str, str] | None = None,
        readme: str | Mapping[str, Any] | None = None,
        freeze: bool = True,
        creator_username: str | None = None,
    ) -> str:
        """Create a dataset from a directory and/or {relpath: local path}; return its URI."""
        with self.configured(base_uri):
            return dtool_s3_core.create_dataset(
                name,
                base_uri,
                source_dir=source_dir,
                files=files,
                readme=readme,
                freeze=freeze,
                creator_username=creator_username,
            )

    def freeze_dataset(self, uri: str) -> str:
        with self.configured(uri):
            return dtool_s3_core.freeze_dataset(uri)

    def publish_dataset(self, uri: str, expiry: int | None = None) -> str:
        """Publish over HTTP(S); ``expiry`` overrides the connection's publish_expiry."""
        with self.configured(uri):
            return dtool_s3_core.publish_dataset(uri, expiry)

    def list_datasets(self, base_uri: str) -> list[dtool_s3_core.DatasetInfo]:
        with self.configured(base_uri):
            return dtool_s3_core.list_datasets(base_uri)

    def find_frozen(self, base_uri: str, name: str) -> dtool_s3_core.DatasetInfo | None:
        """Return the frozen dataset called ``name`` under ``base_uri``; None if absent or a proto.

        The dataset is the one :func:`dtool_s3_core.find_dataset` picks for the name.

        :raises DatasetStateError: if several datasets have that name (and none is the one
                                   :func:`dtool_s3_core.find_or_create_dataset` made for it)
        """
        with self.configured(base_uri):
            info = dtool_s3_core.find_dataset(base_uri, name)
        return info if info is not None and info.frozen else None

    def copy(
        self,
        source_uri: str,
        dest_base_uri: str,
        dest: DtoolS3Hook | None = None,
        resume: bool = False,
    ) -> CopyResult:
        """Copy the frozen dataset at ``source_uri`` to ``dest_base_uri``; the UUID is kept.

        Each side's settings are resolved with its own connection and handed to the copy engine,
        so buckets of one name on two endpoints are no special case.

        :param dest: the hook of the destination's connection (default: this one)
        :param resume: finish an interrupted copy; a complete one is returned as it is
        :raises DatasetStateError: if the destination exists and ``resume`` is False
        """
        return dtool_s3_core.copy(
            source_uri,
            dest_base_uri,
            resume=resume,
            source_config=self.s3_config(source_uri),
            dest_config=(dest or self).s3_config(dest_base_uri),
        )

    def dataset_facts(self, uri: str) -> dict[str, Any]:
        """Return the Asset event extra of the frozen dataset at ``uri`` (S3 or local)."""
        source = dtool_s3_core.open_source(uri, config=self.s3_config(uri))
        admin, entries = source.admin, source.entries()
        return event_extra(
            name=str(admin["name"]),
            uuid=str(admin["uuid"]),
            item_count=len(entries),
            size_in_bytes=sum(entry.size for entry in entries.values()),
            frozen_at=admin.get("frozen_at"),
        )

    def lineage_location(self, uri: str) -> tuple[str, str]:
        """Return the OpenLineage (namespace, name) of a dataset: ``s3://bucket`` and its key
        root (prefix + UUID) for S3 (one small GET), ``file`` and its path for a local dataset,
        directory or file (a ``file://`` URI or a path)."""
        if not is_s3(uri):
            return "file", urlsplit(uri).path or uri
        dataset = dtool_s3_core.open_s3(uri, config=self.s3_config(uri))
        return f"s3://{dataset.bucket}", dataset.layout.root.rstrip("/")


class DtoolS3AliasHook(DtoolS3Hook):
    """The same hook under the connection type's first name, ``dtool_s3``.

    Airflow keys a hook by its class's ``conn_type``, so each type needs a class of its own.
    """

    conn_type = ALIAS_CONN_TYPE
    hook_name = ALIAS_HOOK_NAME


def _noted(settings: ConnectionSettings) -> ConnectionSettings:
    """Log that TLS is not checked: botocore silences urllib3's warning for each request."""
    if settings.verify is False:
        log.warning(
            "connection %r: TLS certificates are not verified (verify is false)", settings.conn_id
        )
    return settings


def _linked_id(own: _Looked) -> str | None:
    conn, extra = own
    return text(extra.get("aws_conn_id")) if conn.conn_type != "aws" else None


async def _alook(conn_id: str) -> _Looked:
    conn = await DtoolS3Hook.aget_connection(conn_id)
    # The synchronous extra_dejson sends a mask request to the supervisor from inside the
    # event loop, which can deadlock the triggerer; the async variant does not.
    extra = await conn.aextra_dejson() if hasattr(conn, "aextra_dejson") else conn.extra_dejson
    return conn, extra
