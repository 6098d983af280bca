"""What this package changes in the dtool command line, and only there.

The ``dtool.cli`` entry point (the ``dtool s3`` command group) is loaded by dtool-cli alone, so
importing :mod:`dtool_s3_core.cli` calls :func:`install`: one-line errors instead of tracebacks,
queued uploads drained when the command ends (so ``dtool add item`` exits 1 if its upload
fails), or stopped if Ctrl-C was pressed (:mod:`._interrupt`, while uploads are queued), the
disk-broker manifest cache for ``dtool cp`` of local datasets, and the check that ``dtool cp``
from S3 to a local directory can write every item name. Library users get none of these.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import click

from .._dataset import barriers
from . import _copycheck, _diskcache, _interrupt

_installed = threading.Event()
_hooked: set[int] = set()


def _at_command_end(drain: Callable[[], None]) -> None:
    context = click.get_current_context(silent=True)
    if context is None:
        return
    root = context.find_root()
    if id(root) not in _hooked:
        _hooked.add(id(root))
        installed = _interrupt.catch()
        root.call_on_close(lambda: _end(drain, installed))


def _end(drain: Callable[[], None], installed: bool) -> None:
    # dtoolcore's loops, not ours, may have seen the KeyboardInterrupt: what they queued stops.
    if _interrupt.seen():
        barriers.interrupt_queues()
        return
    try:
        drain()
    finally:
        if installed:
            _interrupt.release()


def install() -> None:
    """Install the dtool CLI's hooks (idempotent)."""
    if _installed.is_set():
        return
    _installed.set()
    barriers.install_cli_excepthook()
    barriers.drain_when(_at_command_end)
    _diskcache.install()
    _copycheck.install()
