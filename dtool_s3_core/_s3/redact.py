"""Keep credentials (and repeats of our own errors) out of the HTTP libraries' log records.

At DEBUG level (``dtool --debug`` sets it on the root logger) botocore logs every request with
its ``Authorization`` and ``X-Amz-Security-Token`` headers, its string to sign and signature,
and urllib3 logs request lines that may hold presigned query strings. A filter on those loggers
rewrites each record with secrets masked before any handler sees it. Logger filters are not
inherited, so the filter is attached to every logger of those libraries that exists when a
client is built (botocore creates all of its request loggers on import).
"""

from __future__ import annotations

import logging
import re
import threading

_LIBRARIES = ("botocore", "boto3", "urllib3", "s3transfer", "awscrt")
_MASK = "***"
# urllib3 warns about a certificate for another host name, then the request fails and this
# package reports the failure in its own one-line error: the warning would only repeat it.
_RAISED_AS_ERRORS = ("Certificate did not match expected hostname",)
_PATTERNS = (
    # Header values, in dict reprs ('Authorization': b'...') and in raw header dumps.
    re.compile(
        r"((?:Authorization|X-Amz-Security-Token|x-amz-security-token)['\"]?\s*[:=]\s*b?['\"]?)"
        r"[^'\"\r\n,}]+",
        re.IGNORECASE,
    ),
    # Presigned query parameters and SigV4 fragments.
    re.compile(
        r"((?:X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|Signature|Credential)=)"
        r"[^&\s'\",]+",
        re.IGNORECASE,
    ),
    # botocore.auth logs "Signature:\n<hex>" and the string to sign over several lines.
    re.compile(r"((?:Signature|StringToSign|CanonicalRequest):\s*\n)[\s\S]*", re.IGNORECASE),
)


class RedactingFilter(logging.Filter):
    """Mask credential-bearing parts of a record's message, and any known secret value."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add_secrets(self, *values: str | None) -> None:
        with self._lock:
            self._secrets.update(v for v in values if v and len(v) >= 4)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        if message.startswith(_RAISED_AS_ERRORS):
            return False
        masked = message
        for pattern in _PATTERNS:
            masked = pattern.sub(lambda m: m.group(1) + _MASK, masked)
        with self._lock:
            secrets = list(self._secrets)
        for secret in secrets:
            masked = masked.replace(secret, _MASK)
        if masked != message:
            record.msg, record.args = masked, None
        return True


_FILTER = RedactingFilter()


def protect_library_logs(*secrets: str | None) -> None:
    """Attach the redacting filter to the HTTP libraries' loggers; remember ``secrets``."""
    _FILTER.add_secrets(*secrets)
    names = [
        name for name in list(logging.root.manager.loggerDict) if name.split(".")[0] in _LIBRARIES
    ]
    for name in [*_LIBRARIES, *names]:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
