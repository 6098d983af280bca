"""Turn the errors a user can fix into one-line task failures."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dtoolcore
from airflow.sdk.exceptions import AirflowException
from dtoolcore.storagebroker import StorageBrokerOSError

from dtool_s3_core import DtoolS3Error

#: dtool_s3_core's own errors, dtoolcore's, and local file-system problems (missing directories,
#: permissions); anything else is a bug and keeps its traceback as it is.
EXPECTED: tuple[type[Exception], ...] = (
    DtoolS3Error,
    dtoolcore.DtoolCoreTypeError,
    dtoolcore.DtoolCoreKeyError,
    dtoolcore.DtoolCoreValueError,
    dtoolcore.DtoolCoreInvalidNameError,
    StorageBrokerOSError,
    OSError,
)


@contextmanager
def failures(what: str) -> Iterator[None]:
    """Re-raise expected errors as ``AirflowException("<what> failed: <reason>")``.

    The reason already names the bucket, key and fix, so the chain of tracebacks below it (boto,
    dtool_s3_core) is left out of the task log: the failure reads as one line.
    """
    try:
        yield
    except EXPECTED as exc:
        raise AirflowException(f"{what} failed: {one_line(exc)}") from None


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, KeyError) and len(exc.args) == 1:
        text = str(exc.args[0])
    return text or type(exc).__name__
