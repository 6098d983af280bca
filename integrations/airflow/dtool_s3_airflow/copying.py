"""Copy a frozen dataset between two connections (two endpoints, two sets of credentials).

Each side's settings are resolved inside its own connection's scope and handed to the core's
copy engine explicitly, so buckets of one name on two endpoints are no special case. The engine
copies server-side when both sides are one service, else item by item through a temporary
directory, and checks every item against the source manifest.
"""

from __future__ import annotations

import dtool_s3_core
from dtool_s3_core import CopyResult, S3Config
from dtool_s3_core.uri import parse_uri

from .hooks import ConnectionSettings

__all__ = ["CopyResult", "copy_dataset"]


def _config(settings: ConnectionSettings, uri: str) -> S3Config | None:
    if not uri.startswith("s3://"):
        return None
    with settings.applied_to(uri):
        return dtool_s3_core.resolve_config(parse_uri(uri).bucket)


def copy_dataset(
    source_uri: str,
    dest_base_uri: str,
    source: ConnectionSettings,
    dest: ConnectionSettings,
    resume: bool = False,
) -> CopyResult:
    """Copy the frozen dataset at ``source_uri`` to ``dest_base_uri``; the UUID is kept.

    :param source: settings for the source's bucket (ignored for a local source)
    :param dest: settings for the destination's bucket (ignored for a local destination)
    :param resume: finish an interrupted copy (a proto dataset with the same UUID at the
                   destination); a destination that is already frozen is returned as it is
    :raises DatasetStateError: if the destination exists and ``resume`` is False
    """
    return dtool_s3_core.copy(
        source_uri,
        dest_base_uri,
        resume=resume,
        source_config=_config(source, source_uri),
        dest_config=_config(dest, dest_base_uri),
    )
