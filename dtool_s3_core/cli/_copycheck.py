"""``dtool cp`` from S3 to a local directory: names checked up front, a full disk in one line.

dtoolcore's copy creates the local proto dataset and then copies item by item, so an item name
longer than the file system allows, or an item that is also a directory of others (both can be
in a bucket written by other tools), would end in a traceback halfway through, and so would a
disk that fills up. :func:`install` wraps ``dtoolcore.copy`` and ``dtoolcore.copy_resume``, which
``dtool cp`` looks up when it runs: the source's names are checked before anything is written,
and a full (or read-only...) destination ends in one line that says how to finish the copy.
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
        base = _local_base(src_uri, dest_base_uri)
        if base is None:
            return original(src_uri, dest_base_uri, config_path, progressbar)
        # The S3 stack loads when a command runs, not when dtool starts.
        from .. import api
        from .._ops.to_disk import name_max
        from .._s3.transfer import is_local_write_error, local_write_error

        api.open_source(src_uri, config_path).check_local_names(dest_base_uri, name_max(base))
        try:
            return original(src_uri, dest_base_uri, config_path, progressbar)
        except OSError as exc:
            if not is_local_write_error(exc):
                raise
            advice = f"then finish the copy with 'dtool cp --resume {src_uri} {dest_base_uri}'"
            raise local_write_error(exc, base, f"copying {src_uri}", advice) from exc

    return copy


def _local_base(src_uri: str, dest_base_uri: str) -> Path | None:
    """The local directory an S3 dataset is copied to, None for other copies."""
    if not src_uri.startswith("s3://"):
        return None
    from .._ops.to_disk import is_disk_base, local_path

    return Path(local_path(dest_base_uri)) if is_disk_base(dest_base_uri) else None
