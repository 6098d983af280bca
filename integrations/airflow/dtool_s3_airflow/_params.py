"""Read operator parameters after Jinja rendered them: native values or their text.

A template renders to a string (``"3600"``, ``"True"``, ``"None"``) unless the DAG sets
``render_template_as_native_obj``; both forms are accepted, and anything else is a
:class:`ConfigurationError` naming the parameter, which the operator turns into one line.
"""

from __future__ import annotations

from typing import Any

from dtool_s3_core.config import MAX_PRESIGN_EXPIRY
from dtool_s3_core.errors import ConfigurationError

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})
#: What ``{{ params.x }}`` renders for a param that is None or empty.
_UNSET = frozenset({"", "none"})


def flag(name: str, value: Any) -> bool:
    """A boolean parameter: True/False or a word such as ``true``, ``no``, ``1``."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in _TRUE | _FALSE:
        return word in _TRUE
    raise ConfigurationError(f"{name} must be true or false, got {value!r}")


def whole_number(name: str, value: Any, low: int, high: int | None = None) -> int:
    """A whole-number parameter from ``low`` to ``high`` (no upper bound if None)."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    if number is None or number < low or (high is not None and number > high):
        bounds = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise ConfigurationError(f"{name} must be a whole number {bounds}, got {value!r}")
    return number


def expiry(value: Any) -> int | None:
    """Publish expiry in seconds; None (or an empty rendering) uses the connection's."""
    if value is None or (isinstance(value, str) and value.strip().lower() in _UNSET):
        return None
    return whole_number("expiry (seconds)", value, 1, MAX_PRESIGN_EXPIRY)
