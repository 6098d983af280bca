"""Settings that look meant for a bucket but do not apply to it, said before they cost an hour.

dtool-s3 reads ``<KEY>_<bucket>`` with the bucket name exactly as written, so
``DTOOL_S3_ENDPOINT_raw_data`` (a shell cannot export ``raw-data``) is silently not the endpoint
of bucket ``raw-data``, a global ``DTOOL_S3_ACCESS_KEY_ID`` is ignored, and a misspelled key or
bucket just leaves the AWS defaults in place. Each finding is one phrase for a hint.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from .model import ENVIRONMENT, SETTINGS, Origin, Setting

#: How close a name must be (difflib's ratio) to count as a misspelling of another.
_CLOSE = 0.85
#: Names this package reads besides the settings table (not near misses of anything).
_OTHER_NAMES = frozenset({"DTOOL_S3_TRACEBACK"})
_PREFIX = re.compile(r"^DTOOL_S3_", re.IGNORECASE)


def near_misses(
    bucket: str,
    file_values: Mapping[str, Any],
    file_name: str,
    environ: Mapping[str, str],
    overridden: bool = False,
) -> tuple[str, ...]:
    """Return hints for the settings that look meant for ``bucket`` but do not apply to it.

    For a bucket that has settings of its own (keys, or an override for it: ``overridden``),
    only misspelled keys of it are reported: a similar bucket's keys are then that bucket's own.
    """
    found: list[tuple[str, str]] = [(name, ENVIRONMENT) for name in environ]
    found += [(name, file_name) for name in file_values]
    names = [(name, place) for name, place in found if _PREFIX.match(name)]
    configured = overridden or any(_bucket_of(name) == bucket for name, _ in names)
    hints: list[str] = []
    for name, place in names:
        hint = _misspelled(name, place, bucket)
        if hint is None and not configured:
            hint = _other_bucket(name, place, bucket) or _without_bucket(name, place)
        if hint is not None and hint not in hints:
            hints.append(hint)
    return tuple(hints)


def _bucket_of(name: str) -> str | None:
    """The bucket part of a per-bucket key, or None if ``name`` is no such key."""
    for setting in _longest_first(SETTINGS):
        if setting.per_bucket and name.startswith(f"{setting.key}_"):
            return name[len(setting.key) + 1 :]
    return None


def _longest_first(settings: Iterable[Setting]) -> list[Setting]:
    # DTOOL_S3_ACCESS_KEY_ID_b must not read as a key DTOOL_S3_ACCESS with bucket KEY_ID_b.
    return sorted(settings, key=lambda setting: -len(setting.key))


def _misspelled(name: str, place: str, bucket: str) -> str | None:
    if name in _OTHER_NAMES or _bucket_of(name) is not None or _is_global(name):
        return None
    candidates = [f"{s.key}_{bucket}" for s in SETTINGS if s.per_bucket]
    candidates += [s.key for s in SETTINGS if s.global_form or not s.per_bucket]
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=_CLOSE)
    if not close:
        close = [c for c in candidates if c.lower() == name.lower()]
    if not close:
        return None
    return f"{Origin(name, place)} is no setting: did you mean {close[0]}?"


def _is_global(name: str) -> bool:
    return any(name == setting.key for setting in SETTINGS)


def _other_bucket(name: str, place: str, bucket: str) -> str | None:
    other = _bucket_of(name)
    if other is None or other == bucket:
        return None
    key = name[: -len(other) - 1]
    if _folded(other) == _folded(bucket):
        return (
            f"{Origin(name, place)} is for bucket '{other}', not '{bucket}' (bucket names in "
            f"keys are exact): set {key}_{bucket}; a shell that cannot export that name can "
            f"run env '{key}_{bucket}=...' dtool ..., or put it in dtool.json"
        )
    if difflib.SequenceMatcher(None, other, bucket).ratio() >= _CLOSE - 0.1:
        return f"did you mean s3://{other}? ({Origin(name, place)} is set)"
    return None


def _without_bucket(name: str, place: str) -> str | None:
    setting = next((s for s in SETTINGS if s.key == name), None)
    if setting is None or setting.global_form or not setting.per_bucket:
        return None
    return (
        f"{Origin(name, place)} names no bucket and is ignored: dtool-s3's keys are per "
        f"bucket, {name}_<bucket>"
    )


def _folded(bucket: str) -> str:
    return bucket.lower().replace("-", "_").replace(".", "_")
