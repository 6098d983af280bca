"""``dtool cp`` from S3 to a local directory refuses a dataset no local disk can hold, up front.

dtoolcore's copy creates the local proto dataset and then copies item by item, so an item name
longer than the file system allows, or an item that is also a directory of others (both can be
in a bucket written by other tools), would end in a traceback halfway through. :func:`install`
gives ``dtoolcore.copy`` and ``dtoolcore.copy_resume``, which ``dtool cp`` looks up when it
runs, a check of the source's names before anything is written.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dtoolcore

_installed = threading.Event()


def install() -> None:
    """Wrap dtoolcore's copy functions (idempotent)."""
    if _installed.is_set():
        return
    _installed.set()
    for name in ("copy", "copy_resume"):
        setattr(dtoolcore, name, _checked(getattr(dtoolcore, name)))


def _checked(original: Callable[..., str]) -> Callable[..., str]:
    @functools.wraps(original)
    def copy(
        src_uri: str, dest_base_uri: str, config_path: str | None = None, progressbar: Any = None
    ) -> str:
        if src_uri.startswith("s3://"):
            check_names(src_uri, dest_base_uri, config_path)
        return original(src_uri, dest_base_uri, config_path, progressbar)

    return copy


def check_names(src_uri: str, dest_base_uri: str, config_path: str | None) -> None:
    """Refuse an S3 dataset whose items a local destination directory cannot hold."""
    # The S3 stack loads when a command runs, not when dtool starts.
    from .. import api
    from .._ops.to_disk import is_disk_base, local_path, name_max

    if is_disk_base(dest_base_uri):
        limit = name_max(Path(local_path(dest_base_uri)))
        api.open_source(src_uri, config_path).check_local_names(dest_base_uri, limit)
