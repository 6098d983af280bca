"""``dtool s3``: commands of this package in the dtool command line (entry point ``dtool.cli``).

Only dtool-cli imports this package, which is why importing it installs the CLI's hooks.
"""

from __future__ import annotations

import click

from .. import clihooks

clihooks.install()


@click.group()
def s3() -> None:
    """S3 commands of dtool-s3-core."""
