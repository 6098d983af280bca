"""Validation of item relpaths before anything is written."""

from __future__ import annotations

from .errors import ConfigurationError

#: S3 allows 2 KiB of user metadata per object; the base64 handle must fit with the checksum.
MAX_RELPATH_BYTES = 1024


def check_relpath(relpath: str) -> None:
    """Raise ConfigurationError unless ``relpath`` is a clean relative Unix path.

    Refused: empty paths, absolute paths, ``.``/``..``/empty components, control characters
    (newlines included: the dtool CLI cannot freeze them) and names over 1024 UTF-8 bytes.
    """
    if not isinstance(relpath, str) or not relpath:
        raise ConfigurationError("an item relpath must be a non-empty string")
    # Escaped once, so that a newline shows as backslash-n and the message stays one line.
    shown = "'" + relpath.encode("unicode_escape").decode("ascii") + "'"
    if relpath.startswith("/") or (len(relpath) > 1 and relpath[1] == ":"):
        raise ConfigurationError(f"item relpath {shown} is absolute: give a relative path")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in relpath):
        raise ConfigurationError(
            f"item relpath {shown} contains control characters (e.g. a newline): rename the item"
        )
    if any(part in {"", ".", ".."} for part in relpath.split("/")):
        raise ConfigurationError(
            f"item relpath {shown} has an empty, '.' or '..' component: give a normalised path"
        )
    if len(relpath.encode("utf-8")) > MAX_RELPATH_BYTES:
        raise ConfigurationError(
            f"item relpath is {len(relpath.encode('utf-8'))} bytes long: the limit is "
            f"{MAX_RELPATH_BYTES} (S3 metadata size); shorten it"
        )
