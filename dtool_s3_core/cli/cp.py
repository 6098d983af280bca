"""``dtool s3 cp``: copy a dataset with server-side copies, byte progress and a summary."""

from __future__ import annotations

import shlex
import sys
import time
from typing import TYPE_CHECKING

import click

from . import _interrupt
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

    Ctrl-C stops the copy (a second one at once): the destination stays an interrupted copy,
    and one line says how to finish it.
    """
    started = time.monotonic()
    progress = ByteProgress(enabled=not quiet and sys.stderr.isatty())
    with _interrupt.caught():
        try:
            from .. import api  # the S3 stack loads when a command runs, not when dtool starts

            with progress:
                result = api.copy(
                    src_uri,
                    dest_base_uri,
                    resume=resume,
                    progress=progress,
                    resume_with=f"'{resume_command(src_uri, dest_base_uri)}'",
                )
        except KeyboardInterrupt:
            click.echo(interrupted(progress, src_uri, dest_base_uri), err=True)
            raise click.exceptions.Exit(_interrupt.EXIT_STATUS) from None
    if not quiet:
        click.echo(summary(result, time.monotonic() - started))
    click.echo(result.uri)


def summary(result: CopyResult, seconds: float) -> str:
    """One line: items and bytes moved, time, throughput, what a resume kept, how."""
    rate = result.copied_bytes / seconds if seconds > 0 else 0.0
    how = "copied by the server" if result.server_side else "transferred"
    line = (
        f"{how} {result.copied_items} of {result.item_count} items, "
        f"{size_text(result.copied_bytes)} in {duration_text(seconds)} ({size_text(rate)}/s)"
    )
    if result.skipped_items:
        line += f"; {result.skipped_items} skipped (already present)"
    return line


def interrupted(progress: ByteProgress, src_uri: str, dest_base_uri: str) -> str:
    """One line: how far the copy got, and the command that finishes it."""
    command = resume_command(src_uri, dest_base_uri)
    counts = progress.at_destination()
    if counts is None:
        return f"Interrupted before any item was copied; resume with: {command}"
    return f"Interrupted: {counts[0]} of {counts[1]} items copied; resume with: {command}"


def resume_command(src_uri: str, dest_base_uri: str) -> str:
    """The command line that finishes this copy."""
    return f"dtool s3 cp --resume {shlex.quote(src_uri)} {shlex.quote(dest_base_uri)}"
