"""Checks for everything read from a bucket, a cache or a caller before it is used. Pure: no I/O.

A value from a bucket becomes a local path (relpaths, names, identifiers, UUIDs), an object key,
or a claim of integrity (sizes, MD5s). Each check here raises with what is wrong; readers of
bucket objects turn that into one line naming the object (:func:`dtool_s3_core.errors.damaged`),
callers' mistakes are :class:`ConfigurationError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from ..errors import ConfigurationError, DatasetStateError

MD5_RE = re.compile(r"^[0-9a-f]{32}$")
# dtoolcore's rule for dataset, tag, overlay and annotation names; "." and ".." also match it,
# and a local copy would use them as directory names, so they are refused on top.
NAME_RE = re.compile(r"^[0-9A-Za-z_.-]{1,80}$")
#: S3 allows 2 KiB of user metadata per object; the base64 handle must fit with the checksum.
MAX_RELPATH_BYTES = 1024
#: The longest file or directory name of local file systems (NAME_MAX of ext4, XFS, APFS, NTFS),
#: in UTF-8 bytes: an item with a longer name component could never be downloaded.
NAME_MAX = 255
#: Deeper JSON is refused: dtool's objects are a few levels deep, and json recurses per level.
MAX_JSON_DEPTH = 100

KiB = 1024
MiB = 1024 * KiB
#: Size limits by kind of object, far above anything dtool writes, far below exhausting memory.
LIMITS = {
    "registration": 4 * KiB,
    "admin": 1 * MiB,
    "structure": 1 * MiB,
    "fragment": 1 * MiB,
    "annotation": 64 * MiB,
    "readme": 64 * MiB,
    "overlay": 512 * MiB,
    "manifest": 512 * MiB,
}


class Invalid(DatasetStateError):
    """A value read from outside is not what the dtool format allows.

    The message says what is wrong, without where: readers wrap it with the object's URL.
    """


def shown(value: object) -> str:
    """Quote a value for a one-line message: control characters escaped, long values cut."""
    text = value if isinstance(value, str) else repr(value)
    escaped = text.encode("unicode_escape").decode("ascii")
    return "'" + (escaped if len(escaped) <= 120 else escaped[:117] + "...") + "'"


def relpath_problem(relpath: object) -> str | None:
    """Return what is wrong with an item relpath, or None for a clean relative Unix path.

    Refused: empty or non-string paths, absolute paths, ``.``/``..``/empty components, control
    characters (newlines included: the dtool CLI cannot freeze them), backslashes (a Windows
    reader would split on them) and names over 1024 UTF-8 bytes.
    """
    if not isinstance(relpath, str) or not relpath:
        return "is not a non-empty string"
    if relpath.startswith("/") or (len(relpath) > 1 and relpath[1] == ":"):
        return "is absolute: give a relative path"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in relpath):
        return "contains control characters (e.g. a newline): rename the item"
    if "\\" in relpath:
        return "contains a backslash: use '/' between directories"
    if any(part in {"", ".", ".."} for part in relpath.split("/")):
        return "has an empty, '.' or '..' component: give a normalised path"
    size = len(relpath.encode("utf-8", "surrogatepass"))
    if size > MAX_RELPATH_BYTES:
        return f"is {size} bytes long: the limit is {MAX_RELPATH_BYTES} (S3 metadata size)"
    return None


def check_relpath(relpath: str) -> None:
    """Raise ConfigurationError unless a caller's ``relpath`` is a clean relative Unix path
    whose names a local disk can hold."""
    problem = relpath_problem(relpath)
    if problem is None:
        size = long_name(relpath)
        if size is None:
            return
        raise ConfigurationError(
            f"item relpath {shown(relpath)} has a name of {size} bytes: the limit is {NAME_MAX} "
            "(local file systems); shorten it"
        )
    if not isinstance(relpath, str) or not relpath:
        raise ConfigurationError("an item relpath must be a non-empty string")
    if problem.startswith("is ") and "bytes long" in problem:
        raise ConfigurationError(f"item relpath {problem}; shorten it")
    raise ConfigurationError(f"item relpath {shown(relpath)} {problem}")


def check_relpaths(relpaths: Iterable[str]) -> None:
    """Raise ConfigurationError unless every relpath passes :func:`check_relpath` and no two
    clash as a file and a directory."""
    relpaths = list(relpaths)
    for relpath in relpaths:
        check_relpath(relpath)
    pair = clash(relpaths)
    if pair is not None:
        file, below = pair
        raise ConfigurationError(
            f"item relpaths {shown(file)} and {shown(below)} clash: {shown(file)} cannot be both "
            "a file and a directory on a local disk; rename one of them"
        )


def long_name(relpath: str, limit: int = NAME_MAX) -> int | None:
    """Return the UTF-8 size of the first name of ``relpath`` over ``limit`` bytes, or None."""
    for part in relpath.split("/"):
        size = len(part.encode("utf-8", "surrogatepass"))
        if size > limit:
            return size
    return None


def clash(relpaths: Iterable[str]) -> tuple[str, str] | None:
    """Return (a relpath, a relpath below it), which no disk can hold together, or None.

    Linear in the total length of the relpaths: each directory of each relpath is looked up in
    the set of all of them (a sorted list would not do: ``x-1`` sorts between ``x`` and ``x/y``).
    """
    files = set(relpaths)
    for relpath in sorted(files):
        position = relpath.find("/")
        while position != -1:
            if relpath[:position] in files:
                return relpath[:position], relpath
            position = relpath.find("/", position + 1)
    return None


def local_names_problem(relpaths: Iterable[str], limit: int = NAME_MAX) -> str | None:
    """Say why the items of these relpaths cannot all be files on a local disk, or None.

    The phrase follows the dataset's URI, e.g. ``"has items 'x' and 'x/y': ..."``.
    """
    relpaths = sorted(relpaths)
    for relpath in relpaths:
        size = long_name(relpath, limit)
        if size is not None:
            return (
                f"has an item {shown(relpath)} with a name of {size} bytes, over the {limit} "
                "that local file systems allow"
            )
    pair = clash(relpaths)
    if pair is not None:
        file, below = pair
        return (
            f"has items {shown(file)} and {shown(below)}: {shown(file)} cannot be both a file "
            "and a directory on a local disk"
        )
    return None


def name_problem(name: object) -> str | None:
    """Return what is wrong with a dataset, tag, overlay or annotation name, or None."""
    if not isinstance(name, str) or not NAME_RE.match(name) or name in {".", ".."}:
        return "is not a valid dtool name (1-80 letters, digits, '-', '_' or '.'; not '.' or '..')"
    return None


def check_dataset_name(name: str) -> None:
    """Refuse a dataset name that dtool would not accept.

    :raises ConfigurationError: unless ``name`` is 1-80 letters, digits, '-', '_' and '.'
    """
    if name_problem(name) is not None:
        raise ConfigurationError(
            f"invalid dataset name {name!r}: use letters, digits, '-', '_' and '.' (max 80)"
        )


def require(condition: bool, problem: str) -> None:
    if not condition:
        raise Invalid(problem)


def parse_json(data: bytes, kind: str) -> Any:
    """Parse a JSON document of a dataset, bounded in size and depth.

    :param kind: a key of :data:`LIMITS`
    :raises Invalid: for oversized, undecodable, malformed or too deeply nested content
    """
    limit = LIMITS[kind]
    require(len(data) <= limit, f"is {len(data)} bytes, over the limit of {limit} for this object")
    try:
        value = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise Invalid("is not UTF-8 text") from exc
    except RecursionError as exc:
        raise Invalid(f"is JSON nested more than {MAX_JSON_DEPTH} levels deep") from exc
    except ValueError as exc:
        raise Invalid(f"is not valid JSON ({exc})") from exc
    require(_depth(value) <= MAX_JSON_DEPTH, f"is JSON nested more than {MAX_JSON_DEPTH} levels")
    return value


def _depth(value: Any) -> int:
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, level)
        if level > MAX_JSON_DEPTH:
            return level
        stack.extend((child, level + 1) for child in children)
    return deepest


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_names(kind: str, names: list[str]) -> list[str]:
    """Return ``names`` (tags, overlays, annotations) if each is valid.

    :raises Invalid: naming the first invalid one
    """
    for name in names:
        problem = name_problem(name)
        require(problem is None, f"holds {kind} {shown(name)}, which {problem}")
    return names


def check_overlay(overlay: Any, identifiers: set[str]) -> dict[str, Any]:
    """Check that an overlay is an object keyed by exactly the dataset's identifiers."""
    require(isinstance(overlay, dict), "is not a JSON object")
    require(set(overlay) == identifiers, "does not have one value per item of the dataset")
    return dict(overlay)


def check_prefix(body: bytes) -> str:
    """Return the prefix a registration key holds."""
    require(len(body) <= LIMITS["registration"], "is too long to be a key prefix")
    try:
        prefix = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Invalid("is not UTF-8 text") from exc
    require(not any(ord(ch) < 32 or ord(ch) == 127 for ch in prefix), "holds control characters")
    return prefix
