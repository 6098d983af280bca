"""A Snakemake-7-style ``RemoteProvider`` for dtool datasets in S3, for Snakefiles.

::

    from dtool_s3_core.snakemake import RemoteProvider
    dtool_s3 = RemoteProvider()

    rule align:
        input:  dtool_s3.remote("s3://raw-data/<uuid-or-name>/reads/{sample}.fq")
        output: dtool_s3.remote("s3://results/alignments/{sample}.bam")

The helper only rewrites ``s3://<bucket>/<dataset>/<relpath>`` into the plugin's query
``dtool://<bucket>/<dataset>/<relpath>`` and hands it to the workflow's storage registry, so the
results are ordinary Snakemake 9 storage objects (identical to ``storage.dtool(...)``).
Snakemake itself is looked up when a method is called, never at import time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import sys
import warnings
from collections.abc import Mapping
from typing import Any

from dtool_s3_core.errors import ConfigurationError

from . import freezing
from .query import MARKER, QueryError, parse_query, to_dtool_query
from .settings import StorageProviderSettings

PLUGIN = "dtool"

#: The plugin's settings, which RemoteProvider takes as keywords.
SETTINGS = tuple(f.name for f in dataclasses.fields(StorageProviderSettings))

#: Snakemake 7's ``snakemake.remote.S3.RemoteProvider`` keywords (its own renames plus the
#: boto3 names it passed through) -> ours.
SNAKEMAKE7_NAMES = {
    "access_key_id": "access_key",
    "secret_access_key": "secret_key",
    "host": "endpoint_url",
    "aws_access_key_id": "access_key",
    "aws_secret_access_key": "secret_key",
    "aws_session_token": "session_token",
    "region_name": "region",
}

_FLAGS = ("keep_local", "retrieve")


def _valid_names() -> str:
    return ", ".join((*_FLAGS, *SETTINGS))


def _deprecated(message: str, depth: int = 3) -> None:
    # Snakefiles run in snakemake.workflow's namespace, where Python hides DeprecationWarnings;
    # the Snakefile is the user's program, so the warning is shown as for __main__, at the
    # Snakefile's line (the caller of RemoteProvider() or remote(), ``depth`` frames up). The
    # "<...>" name keeps the warnings module from printing that line: it may hold a literal
    # secret.
    caller = sys._getframe(depth)
    warnings.warn_explicit(
        message,
        DeprecationWarning,
        f"<{caller.f_code.co_filename}>",
        caller.f_lineno,
        module="__main__",
    )


def _settings_from(keywords: Mapping[str, Any]) -> dict[str, Any]:
    """Map Snakemake 7 names onto ours (with a warning) and refuse unknown keywords."""
    settings: dict[str, Any] = {}
    for name, value in keywords.items():
        new = SNAKEMAKE7_NAMES.get(name)
        if new is not None:
            _deprecated(f"RemoteProvider({name}=...) is Snakemake 7's name: use {new}=... instead")
        elif name in SETTINGS:
            new = name
        else:
            raise TypeError(
                f"RemoteProvider() got an unknown keyword '{name}': valid keywords are "
                f"{_valid_names()} (Snakemake 7 names: {', '.join(SNAKEMAKE7_NAMES)})"
            )
        if new in settings:
            raise TypeError(f"RemoteProvider() got '{new}' twice (once as '{name}')")
        if value is not None:
            settings[new] = value
    return settings


def _retrieve_from(stay_on_remote: bool | None, retrieve: bool | None, where: str) -> bool | None:
    if stay_on_remote is None:
        return retrieve
    _deprecated(
        f"{where}(stay_on_remote=...) is Snakemake 7's name: use retrieve=False instead of "
        "stay_on_remote=True"
    )
    if retrieve is not None:
        raise TypeError(f"{where}() got both stay_on_remote and retrieve: give retrieve only")
    return not stay_on_remote


class RemoteProvider:
    """Returns storage objects of the ``dtool`` plugin for ``s3://`` or ``dtool://`` URIs.

    :param keep_local: keep local copies of inputs after the run (default: Snakemake's setting)
    :param retrieve: download inputs / upload outputs (default True); False hands jobs the
                     queries instead, as Snakemake 7's ``stay_on_remote`` did
    :param settings: plugin settings (``endpoint_url``, ``access_key``, ``secret_key``,
                     ``dataset_prefix``, ...); given ones override ``--storage-dtool-*``.
                     Snakemake 7's names (``access_key_id``, ``secret_access_key``, ``host``,
                     ...) are accepted with a DeprecationWarning; anything else is a TypeError.
    """

    def __init__(
        self,
        *,
        keep_local: bool | None = None,
        retrieve: bool | None = None,
        stay_on_remote: bool | None = None,
        **settings: Any,
    ) -> None:
        self.keep_local = keep_local
        self.retrieve = _retrieve_from(stay_on_remote, retrieve, "RemoteProvider")
        self._settings = _settings_from(settings)
        self._registry: Any = None
        self._tag: str | None = None

    def __repr__(self) -> str:
        return f"RemoteProvider(settings={sorted(self._settings)})"

    def remote(
        self,
        value: Any,
        retrieve: bool | None = None,
        keep_local: bool | None = None,
        *,
        stay_on_remote: bool | None = None,
    ) -> Any:
        """Return the storage object(s) for a URI or a list of URIs (flags such as
        ``directory(...)`` on the URI are kept)."""
        retrieve = _retrieve_from(stay_on_remote, retrieve, "remote")
        if isinstance(value, list | tuple):
            return [self.remote(item, retrieve, keep_local) for item in value]
        query = self._query(value)
        return self._storage()(
            query,
            retrieve=self.retrieve if retrieve is None else retrieve,
            keep_local=self.keep_local if keep_local is None else keep_local,
        )

    def frozen(
        self, uri: str, readme: str | Mapping[str, Any] | None = None, **unexpected: Any
    ) -> Any:
        """Return the freeze marker of the dataset ``s3://<bucket>/<name>`` as an *input*.

        It exists once the dataset is frozen: put it in ``rule all`` (or any rule that needs
        the whole dataset). The freeze rule's output is :meth:`freeze_marker`.

        ``frozen(uri, readme=...)`` is the previous release's freeze rule output: it still
        returns exactly ``freeze_marker(uri, readme=...)``, with a DeprecationWarning.
        """
        if unexpected:
            raise TypeError(
                f"frozen() takes the dataset URI only (got {', '.join(sorted(unexpected))}): "
                "the freeze rule's output is freeze_marker(uri, readme=...)"
            )
        if readme is not None:
            _deprecated(
                "frozen(uri, readme=...) as the freeze rule's output is deprecated: use "
                "freeze_marker(uri, readme=...) there (frozen(uri) is the marker as an input)",
                depth=2,
            )
            return self.freeze_marker(uri, readme=readme)
        return self._storage()(self._marker(uri), retrieve=True, keep_local=self.keep_local)

    def freeze_marker(self, uri: str, readme: str | Mapping[str, Any] | None = None) -> Any:
        """Return the freeze marker of ``s3://<bucket>/<name>`` as the *output* of a freeze rule.

        Use it as the output of a rule whose inputs are the dataset's items: storing the marker
        freezes the dataset. ``readme`` (text, or a mapping written as YAML) becomes its README.
        The marker is flagged ``touch``, so the rule needs no action of its own.
        """
        query = self._marker(uri)
        if readme is not None:
            parsed = parse_query(query)
            freezing.register_readme(parsed.bucket, parsed.dataset, readme)
        # Never retrieve=False here: Snakemake would then not store the marker, and not freeze.
        marker = self._storage()(query, retrieve=True, keep_local=self.keep_local)
        io = importlib.import_module("snakemake.io")
        return io.flag(marker, "touch")

    def _marker(self, uri: str) -> str:
        query = f"{self._query(str(uri).rstrip('/'))}/{MARKER}"
        try:
            return str(parse_query(query))
        except QueryError as exc:
            raise ConfigurationError(str(exc)) from exc

    def _query(self, value: Any) -> Any:
        try:
            query = to_dtool_query(str(value))
        except QueryError as exc:
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
