"""``from dtool_s3_core.snakemake import RemoteProvider``: the import path Snakefiles write.

``RemoteProvider`` lives with the Snakemake storage plugin
(``snakemake_storage_plugin_dtool.remote``). This module resolves it on first access, so
importing ``dtool_s3_core`` (or this module) never imports Snakemake or the plugin, and a
missing plugin is one line that says what to install.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from snakemake_storage_plugin_dtool.remote import RemoteProvider

__all__ = ["RemoteProvider"]

_HOME = "snakemake_storage_plugin_dtool.remote"


def __getattr__(name: str) -> Any:
    if name != "RemoteProvider":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        module = importlib.import_module(_HOME)
    except ImportError as exc:
        missing = exc.name or _HOME
        raise ImportError(
            f"dtool_s3_core.snakemake.RemoteProvider needs the dtool storage plugin for "
            f"Snakemake ({missing} is not installed): install dtool-s3-core[snakemake]"
        ) from None
    return module.RemoteProvider
