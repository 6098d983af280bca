"""``dtool s3 rm``: delete a dataset or a proto dataset, after saying what goes."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from .progress import size_text

if TYPE_CHECKING:
    from .._ops.delete import DeletionPlan

_KINDS = {
    "frozen": "the frozen dataset",
    "proto": "the proto dataset",
    "half-deleted": "what is left of a half-deleted dataset",
    "damaged": "the damaged dataset",
}


@click.command("rm")
@click.option("--yes", "-y", is_flag=True, help="Delete without asking.")
@click.argument("dataset_uri")
def rm(yes: bool, dataset_uri: str) -> None:
    """Delete the dataset DATASET_URI (s3://bucket/uuid), frozen or proto, with every object.

    First shows what goes (name, UUID, frozen or proto, items and their size) and asks; --yes
    deletes without asking, and is needed where there is no terminal to ask on. A dataset under
    S3 Object Lock (retention or legal hold) is refused. An interrupted deletion is never
    listed as a dataset; running the command again finishes it. Multipart uploads in progress
    under the dataset are aborted.
    """
    from .. import api  # the S3 stack loads when a command runs, not when dtool starts

    plan = api.plan_dataset_deletion(dataset_uri)
    if not yes:
        if not sys.stdin.isatty():
            raise click.ClickException(
                f"not deleting {plan.uri} without confirmation, and there is no terminal to "
                "ask on: add --yes to delete it"
            )
        click.echo(description(plan))
        if not click.confirm("Delete it?", default=False):
            click.echo("Nothing deleted.")
            raise SystemExit(1)
    api.delete_dataset(dataset_uri, plan=plan)
    done = f"{_many(plan.objects, 'object')}, {_many(plan.items, 'item')}, "
    done += size_text(plan.item_bytes)
    if plan.uploads:
        done += f"; {_many(plan.uploads, 'unfinished upload')} aborted"
    click.echo(f"Deleted {_KINDS[plan.state]}{_named(plan)} at {plan.uri}: {done}")


def description(plan: DeletionPlan) -> str:
    """What goes, one fact a line: the kind and name, the URI, the UUID, items and objects."""
    uploads = f", and {_many(plan.uploads, 'unfinished upload')}" if plan.uploads else ""
    return "\n".join(
        [
            f"This deletes {_KINDS[plan.state]}{_named(plan)}:",
            f"  URI:     {plan.uri}",
            f"  UUID:    {plan.uuid}",
            f"  items:   {plan.items} ({size_text(plan.item_bytes)})",
            f"  objects: {plan.objects}{uploads}",
        ]
    )


def _named(plan: DeletionPlan) -> str:
    return f" {plan.name!r}" if plan.name is not None else ""


def _many(count: int, thing: str) -> str:
    return f"{count} {thing}" + ("" if count == 1 else "s")
