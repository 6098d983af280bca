"""``dtool s3``: the commands dtool's generic CLI cannot give S3 users (cp, verify, rm, doctor).

Registered through dtool's ``dtool.cli`` entry point, so only the dtool command line imports this
package; that is why importing it installs the CLI's hooks (:mod:`._hooks`). The commands are
thin: every decision is made by the core's Python API.
"""

from __future__ import annotations

import click

from . import _hooks
from .cp import cp
from .doctor import doctor
from .rm import rm
from .verify import verify

_hooks.install()


@click.group()
def s3() -> None:
    """S3 commands: server-side copies with byte progress, deep verification, deletion,
    diagnosis."""


s3.add_command(cp)
s3.add_command(verify)
s3.add_command(rm)
s3.add_command(doctor)
