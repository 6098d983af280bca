"""``dtool s3 cp``: copy a dataset with server-side copies, byte progress and a summary."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

import click

from .progress import ByteProgress, duration_text, size_text

if TYPE_CHECKING:
    from .._ops.results import CopyResult


@click.command("cp")
@click.option("--resume", is_flag=True, help="Finish an interrupted copy, keeping intact items.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or summary: only the new URI.")
@click.argument("src_uri")
@click.argument("dest_base_uri")
def cp(resume: bool, quiet: bool, src_uri: str, dest_base_uri: str) -> None:
    """Copy the frozen dataset SRC_URI to DEST_BASE_URI (local->S3, S3->local, S3->S3).

    Between buckets of one endpoint and one set of credentials the server copies the items;
    across endpoints they stream through memory; to a local directory they download straight
    into the new dataset (nothing is left in the dtool cache). Every item is checked against
    the source manifest. On a terminal a progress bar shows the bytes moved; at the end one
    summary line, then the URI of the copy.
    """
    from .. import api  # the S3 stack loads when a command runs, not when dtool starts

    started = time.monotonic()
    with ByteProgress(enabled=not quiet and sys.stderr.isatty()) as progress:
        result = api.copy(src_uri, dest_base_uri, resume=resume, progress=progress)
    if not quiet:
        click.echo(summary(result, time.monotonic() - started))
    click.echo(result.uri)


def summary(result: CopyResult, seconds: float) -> str:
    """One line: items and bytes moved, time, throughput, what a resume kept, how."""
    rate = result.copied_bytes / seconds if seconds > 0 else 0.0
    how = "copied by the server" if result.server_side else "transferred"
    return (
        f"{how} {result.copied_items} of {result.item_count} items, "
        f"{size_text(result.copied_bytes)} in {duration_text(seconds)} ({size_text(rate)}/s); "
        f"{result.skipped_items} skipped (already present)"
    )
