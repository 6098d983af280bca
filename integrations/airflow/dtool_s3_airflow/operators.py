"""Operators: create, copy, freeze, publish and list dtool datasets.

Every parameter a task may want to compute (locations, connection ids, names, ``freeze``,
``resume``, ``expiry``, ``limit``) is a template field; rendered values are checked when the task
runs. Each operator returns something small for
XCom (a URI, a URL, a bounded list of small dicts). Create, copy and freeze record an Asset event
for the frozen dataset they produce (see :mod:`dtool_s3_airflow.assets`). Errors the user can fix
fail the task with one line: ``AirflowException("<what> failed: <reason>")``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import AssetAlias, BaseOperator, Context

from . import _params
from ._errors import failures
from .assets import DEFAULT_ASSET_ALIAS, emit, event_extra
from .hooks import DEFAULT_CONN_ID, DtoolS3Hook
from .lineage import operator_lineage

if TYPE_CHECKING:
    from .lineage import Lineage

#: Default upper bound of DtoolS3ListOperator's result (about 150 bytes of XCom per dataset).
DEFAULT_LIST_LIMIT = 1000
LIST_FIELDS = ("uri", "uuid", "name", "frozen", "created_at", "frozen_at")


class _DtoolS3Operator(BaseOperator):
    """An operator of one connection: a cached hook, and the lineage of what it ran on."""

    dtool_s3_conn_id: str

    @cached_property
    def hook(self) -> DtoolS3Hook:
        return DtoolS3Hook(self.dtool_s3_conn_id)

    #: (inputs, outputs) as dataset URIs or local paths, set by execute.
    _lineage: tuple[list[str], list[str]] = ([], [])

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Lineage:
        """Input and output datasets for the openlineage provider (installed separately)."""
        inputs, outputs = self._lineage
        where = self.hook.lineage_location
        return operator_lineage(map(where, inputs), map(where, outputs))


class _AssetEmittingOperator(_DtoolS3Operator):
    """Adds the AssetAlias ``asset_alias`` to the outlets (None: only the outlets given)."""

    def __init__(self, *, asset_alias: str | None = DEFAULT_ASSET_ALIAS, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.asset_alias = asset_alias
        declared = {o.name for o in self.outlets if isinstance(o, AssetAlias)}
        if asset_alias and asset_alias not in declared:
            self.add_outlets([AssetAlias(name=asset_alias)])

    def _emit(self, context: Context, uri: str, extra: dict[str, Any]) -> None:
        emit(context, self.outlets, uri, extra)


class DtoolS3CreateDatasetOperator(_AssetEmittingOperator):
    """Create a dataset from a local directory and/or files; return its URI.

    :param name: dataset name (letters, digits, ``-``, ``_``, ``.``)
    :param base_uri: ``s3://bucket`` or a local directory
    :param source_dir: every file below it becomes an item (relpath = path below it)
    :param files: ``{relpath: local path}`` items, added after ``source_dir``'s
    :param readme: README content: a string, or a mapping written as YAML
    :param freeze: freeze the dataset (default); else it stays a proto dataset and no Asset
                   event is recorded (the freeze operator records it later)
    :param creator_username: recorded in the admin metadata (default: the worker's user)
    :param dtool_s3_conn_id: the ``dtool_s3`` connection for ``base_uri``
    :param asset_alias: AssetAlias to record the event on; None for none
    """

    template_fields: Sequence[str] = (
        "name",
        "base_uri",
        "source_dir",
        "files",
        "readme",
        "freeze",
        "creator_username",
        "dtool_s3_conn_id",
    )
    template_fields_renderers = {"readme": "json", "files": "json"}  # noqa: RUF012
    ui_color = "#c7e9c0"

    def __init__(
        self,
        *,
        name: str,
        base_uri: str,
        source_dir: str | None = None,
        files: Mapping[str, str] | None = None,
        readme: str | Mapping[str, Any] | None = None,
        freeze: bool | str = True,
        creator_username: str | None = None,
        dtool_s3_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.name = name
        self.base_uri = base_uri
        self.source_dir = source_dir
        self.files = files
        self.readme = readme
        self.freeze = freeze
        self.creator_username = creator_username
        self.dtool_s3_conn_id = dtool_s3_conn_id

    def execute(self, context: Context) -> str:
        what = (
            f"creating dataset {self.name!r} in {self.base_uri} "
            f"(connection {self.dtool_s3_conn_id!r})"
        )
        with failures(what):
            freeze = _params.flag("freeze", self.freeze)
            uri = self.hook.create_dataset(
                self.name,
                self.base_uri,
                source_dir=self.source_dir,
                files=self.files,
                readme=self.readme,
                freeze=freeze,
                creator_username=self.creator_username,
            )
            sources = [self.source_dir] if self.source_dir else []
            self._lineage = ([*sources, *(self.files or {}).values()], [uri])
            if not freeze:
                self.log.info("created proto dataset %s (not frozen, no Asset event)", uri)
                return uri
            extra = self.hook.dataset_facts(uri)
        self.log.info("created %s with %d item(s)", uri, extra["item_count"])
        self._emit(context, uri, extra)
        return uri


class DtoolS3CopyOperator(_AssetEmittingOperator):
    """Copy a frozen dataset, possibly between two endpoints; return the new URI (same UUID).

    :param source_uri: dataset URI (``s3://bucket/<uuid>``) or local dataset path
    :param dest_base_uri: ``s3://bucket`` or a local directory
    :param source_conn_id: connection for the source's bucket
    :param dest_conn_id: connection for the destination's bucket (default: ``source_conn_id``)
    :param resume: finish an interrupted copy to the same destination; an already complete copy
                   is returned as it is (safe for task retries)
    """

    template_fields: Sequence[str] = (
        "source_uri",
        "dest_base_uri",
        "source_conn_id",
        "dest_conn_id",
        "resume",
    )
    ui_color = "#9ecae1"

    def __init__(
        self,
        *,
        source_uri: str,
        dest_base_uri: str,
        source_conn_id: str = DEFAULT_CONN_ID,
        dest_conn_id: str | None = None,
        resume: bool | str = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.source_uri = source_uri
        self.dest_base_uri = dest_base_uri
        self.source_conn_id = source_conn_id
        self.dest_conn_id = dest_conn_id
        self.resume = resume

    @cached_property
    def hook(self) -> DtoolS3Hook:
        return DtoolS3Hook(self.source_conn_id)

    @cached_property
    def dest_hook(self) -> DtoolS3Hook:
        return DtoolS3Hook(self.dest_conn_id or self.source_conn_id)

    def execute(self, context: Context) -> str:
        what = (
            f"copying {self.source_uri} to {self.dest_base_uri} "
            f"(connections {self.source_conn_id!r} -> {self.dest_hook.dtool_s3_conn_id!r})"
        )
        with failures(what):
            resume = _params.flag("resume", self.resume)
            result = self.hook.copy(
                self.source_uri, self.dest_base_uri, self.dest_hook, resume=resume
            )
        self._lineage = ([self.source_uri], [result.uri])
        self.log.info(
            "%s %s -> %s (%d item(s), %d bytes)",
            "resumed" if result.resumed else "copied",
            self.source_uri,
            result.uri,
            result.item_count,
            result.size_in_bytes,
        )
        extra = event_extra(
            name=result.name,
            uuid=result.uuid,
            item_count=result.item_count,
            size_in_bytes=result.size_in_bytes,
            source_uri=self.source_uri,
        )
        self._emit(context, result.uri, extra)
        return result.uri

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Lineage:
        inputs, outputs = self._lineage
        return operator_lineage(
            [self.hook.lineage_location(uri) for uri in inputs],
            [self.dest_hook.lineage_location(uri) for uri in outputs],
        )


class DtoolS3FreezeOperator(_AssetEmittingOperator):
    """Freeze a proto dataset (a frozen one is left as it is); return its URI."""

    template_fields: Sequence[str] = ("uri", "dtool_s3_conn_id")

    def __init__(self, *, uri: str, dtool_s3_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.uri = uri
        self.dtool_s3_conn_id = dtool_s3_conn_id

    def execute(self, context: Context) -> str:
        with failures(f"freezing {self.uri} (connection {self.dtool_s3_conn_id!r})"):
            uri = self.hook.freeze_dataset(self.uri)
            self._lineage = ([], [uri])
            extra = self.hook.dataset_facts(uri)
        self.log.info("%s is frozen with %d item(s)", uri, extra["item_count"])
        self._emit(context, uri, extra)
        return uri


class DtoolS3PublishOperator(_DtoolS3Operator):
    """Publish a frozen dataset over HTTP(S) for dtool-http; return the access URL.

    :param uri: ``s3://bucket/<uuid>``
    :param expiry: lifetime of the presigned URLs in seconds (1 s to 7 days); None uses the
                   connection's ``publish_expiry``, and without one the objects get public-read
                   ACLs and the URL never expires
    """

    template_fields: Sequence[str] = ("uri", "expiry", "dtool_s3_conn_id")

    def __init__(
        self,
        *,
        uri: str,
        expiry: int | str | None = None,
        dtool_s3_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.uri = uri
        self.expiry = expiry
        self.dtool_s3_conn_id = dtool_s3_conn_id

    def execute(self, context: Context) -> str:
        with failures(f"publishing {self.uri} (connection {self.dtool_s3_conn_id!r})"):
            url = self.hook.publish_dataset(self.uri, _params.expiry(self.expiry))
        # Publishing reads the dataset; what it writes (ACLs, the HTTP manifest) is no new data.
        self._lineage = ([self.uri], [])
        # A presigned URL is a bearer token for the dataset: keep its query out of the log.
        self.log.info("published %s at %s", self.uri, url.split("?", 1)[0])
        return url


class DtoolS3ListOperator(_DtoolS3Operator):
    """List the datasets under a base URI, newest first; return at most ``limit`` small dicts.

    Each dict has ``uri, uuid, name, frozen, created_at, frozen_at`` (timestamps in seconds
    since the epoch; ``frozen_at`` is None for proto datasets).

    :param base_uri: ``s3://bucket`` or a local directory
    :param limit: the most datasets returned (a warning says how many were left out)
    """

    template_fields: Sequence[str] = ("base_uri", "limit", "dtool_s3_conn_id")

    def __init__(
        self,
        *,
        base_uri: str,
        limit: int | str = DEFAULT_LIST_LIMIT,
        dtool_s3_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # A literal is checked when the DAG is parsed; a template when the task runs.
        if isinstance(limit, int) and limit < 1:
            raise ValueError(f"{self.task_id}: limit must be at least 1, got {limit}")
        self.base_uri = base_uri
        self.limit = limit
        self.dtool_s3_conn_id = dtool_s3_conn_id

    def execute(self, context: Context) -> list[dict[str, Any]]:
        with failures(f"listing {self.base_uri} (connection {self.dtool_s3_conn_id!r})"):
            limit = _params.whole_number("limit", self.limit, 1)
            infos = self.hook.list_datasets(self.base_uri)
        infos.sort(key=lambda info: info.created_at or 0.0, reverse=True)
        if len(infos) > limit:
            self.log.warning(
                "%s holds %d datasets; returning the newest %d (raise limit for more)",
                self.base_uri,
                len(infos),
                limit,
            )
        listing = [{key: info.as_dict()[key] for key in LIST_FIELDS} for info in infos]
        return listing[:limit]
