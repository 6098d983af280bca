"""Retries that botocore cannot make: a response body that breaks after its headers arrived.

Botocore's *standard* retry mode retries throttling (503 SlowDown), 5xx answers, connection
resets and timeouts until the headers of an answer arrive; awscrt retries its own requests.
:func:`retrying` repeats a whole attempt when the body breaks midway (a reset, a truncation, a
read timeout), waiting :func:`backoff` between attempts, as both libraries do.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from botocore.exceptions import (
    ConnectionClosedError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from .. import errors
from ..config import S3Config
from .translate import connection_broke

logger = logging.getLogger(__name__)
T = TypeVar("T")


@functools.cache
def _transient_body_errors() -> tuple[type[BaseException], ...]:
    # urllib3 is imported here, with the first retry, not with the package.
    from urllib3.exceptions import ProtocolError

    return (
        ResponseStreamingError,
        # A body shorter than its Content-Length: the connection closed midway.
        IncompleteReadError,
        ReadTimeoutError,
        ConnectionClosedError,
        ProtocolError,
        ConnectionError,
    )


def backoff(attempt: int) -> None:
    """Wait before the next attempt: exponential with full jitter, at most 20 s."""
    time.sleep(random.uniform(0, min(20.0, 0.1 * 2**attempt)))


def retrying(fn: Callable[[], T], config: S3Config, what: str) -> T:
    """Call ``fn`` again when reading a response body fails midway (reset, truncation, timeout).

    Botocore retries a request until its headers arrive; a body that breaks afterwards surfaces
    here, and waits :func:`backoff` between attempts, ``config.max_attempts`` attempts in all.
    """
    max_attempts = config.max_attempts
    for attempt in range(1, max_attempts + 1):
        try:
            return fn()
        except _transient_body_errors() as exc:
            # EndpointUnreachable is a ConnectionError too, but botocore has already retried it.
            if isinstance(exc, errors.DtoolS3Error):
                raise
            if attempt == max_attempts:
                cause = type(exc).__name__
                setting = config.where_set("max_attempts")
                raise connection_broke("reading", what, max_attempts, cause, setting) from exc
            logger.info("retrying %s after %s (attempt %d)", what, type(exc).__name__, attempt)
            backoff(attempt)
    raise AssertionError("unreachable")
