"""A Snakemake-7-style ``RemoteProvider`` for dtool datasets in S3, for Snakefiles.

::

    from dtool_s3_core.snakemake import RemoteProvider
    dtool_s3 = RemoteProvider()

    rule align:
        input:  dtool_s3.remote("s3://raw-data/<uuid-or-name>/reads/{sample}.fq")
        output: dtool_s3.remote("s3://results/alignments/{sample}.bam")

The helper only rewrites ``s3://<bucket>/<dataset>/<relpath>`` into the ``dtool`` storage plugin's
query ``dtool://<bucket>/<dataset>/<relpath>`` and hands it to the workflow's storage registry,
so the results are ordinary Snakemake 9 storage objects (identical to ``storage.dtool(...)``).
Snakemake and the plugin are imported when a method is called, never at import time.
"""

from __future__ import annotations

import hashlib
import importlib
import sys
from collections.abc import Mapping
from typing import Any

from .errors import ConfigurationError

PLUGIN = "dtool"


class RemoteProvider:
    """Returns storage objects of the ``dtool`` plugin for ``s3://`` or ``dtool://`` URIs.

    :param keep_local: keep local copies of inputs after the run (default: Snakemake's setting)
    :param retrieve: download inputs / upload outputs (default True); False hands jobs the
                     queries instead, as Snakemake 7's ``stay_on_remote`` did
    :param settings: plugin settings (``endpoint_url``, ``access_key``, ``secret_key``,
                     ``dataset_prefix``, ...); given ones override ``--storage-dtool-*``
    """

    def __init__(
        self, *, keep_local: bool | None = None, retrieve: bool | None = None, **settings: Any
    ) -> None:
        self.keep_local = keep_local
        self.retrieve = retrieve
        self._settings = {name: value for name, value in settings.items() if value is not None}
        self._registry: Any = None
        self._tag: str | None = None

    def __repr__(self) -> str:
        return f"RemoteProvider(settings={sorted(self._settings)})"

    def remote(
        self, value: Any, retrieve: bool | None = None, keep_local: bool | None = None
    ) -> Any:
        """Return the storage object(s) for a URI or a list of URIs (flags such as
        ``directory(...)`` on the URI are kept)."""
        if isinstance(value, list | tuple):
            return [self.remote(item, retrieve, keep_local) for item in value]
        query = self._query(value)
        return self._storage()(
            query,
            retrieve=self.retrieve if retrieve is None else retrieve,
            keep_local=self.keep_local if keep_local is None else keep_local,
        )

    def frozen(self, uri: str, readme: str | Mapping[str, Any] | None = None) -> Any:
        """Return the freeze marker of the dataset ``s3://<bucket>/<name>``.

        Use it as the output of a rule whose inputs are the dataset's items: storing the marker
        freezes the dataset. ``readme`` (text, or a mapping written as YAML) becomes its README.
        """
        plugin_query = importlib.import_module("snakemake_storage_plugin_dtool.query")
        freezing = importlib.import_module("snakemake_storage_plugin_dtool.freezing")
        query = plugin_query.parse_query(
            f"{self._query(str(uri).rstrip('/'))}/{plugin_query.MARKER}"
        )
        if readme is not None:
            freezing.register_readme(query.bucket, query.dataset, readme)
        # Never retrieve=False here: Snakemake would then not store the marker, and not freeze.
        marker = self._storage()(str(query), retrieve=True, keep_local=self.keep_local)
        # touch(): Snakemake creates the local marker file itself, so a freeze rule needs no
        # action (an action that writes README text into it still can).
        io = importlib.import_module("snakemake.io")
        return io.flag(marker, "touch")

    def _query(self, value: Any) -> Any:
        plugin_query = importlib.import_module("snakemake_storage_plugin_dtool.query")
        try:
            query = plugin_query.to_dtool_query(str(value))
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from exc
        if query == str(value):
            return value
        new_from = getattr(value, "new_from", None)
        return new_from(query) if new_from is not None else query

    def _storage(self) -> Any:
        registry = _active_workflow().storage_registry
        if not self._settings:
            return getattr(registry, PLUGIN)
        if self._registry is not registry:
            self._tag = _tag_for(self._settings)
            registry.register_storage(provider=PLUGIN, tag=self._tag, **self._settings)
            self._registry = registry
        return getattr(registry, str(self._tag))


def _active_workflow() -> Any:
    # Snakemake publishes the running workflow as a global of snakemake.workflow; importing
    # that module from outside a run would only trip over Snakemake's circular imports.
    module = sys.modules.get("snakemake.workflow")
    workflow = getattr(module, "workflow", None)
    if workflow is None:
        raise ConfigurationError(
            "RemoteProvider.remote() works inside a Snakefile run by Snakemake 9 only "
            "(no active workflow)"
        )
    return workflow


def _tag_for(settings: Mapping[str, Any]) -> str:
    # The tag names the local copy directory, so the same settings must give the same tag in
    # every process; a digest keeps secret values out of paths and logs.
    text = "\n".join(f"{name}={settings[name]}" for name in sorted(settings))
    return f"{PLUGIN}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:10]}"
