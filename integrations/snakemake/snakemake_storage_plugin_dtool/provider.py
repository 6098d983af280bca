"""``StorageProvider``: the ``dtool`` storage plugin's entry point for Snakemake."""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

from snakemake_interface_storage_plugins.common import Operation
from snakemake_interface_storage_plugins.storage_provider import (
    ExampleQuery,
    QueryType,
    StorageProviderBase,
    StorageQueryValidationResult,
)

from .datasets import Datasets
from .query import QueryError, parse_query
from .settings import (
    StorageProviderSettings,
    config_path,
    core_overrides,
    secret_flags,
    uuid_salt,
)

# Snakemake looks the object class up by this name in the provider's module.
from .storage_object import StorageObject

__all__ = ["StorageObject", "StorageProvider"]

_UUID = "8c0f2a47-3e1b-4f6a-9d52-7b1e0c9a4d13"


class StorageProvider(StorageProviderBase):  # type: ignore[misc]
    settings: StorageProviderSettings | None

    def __post_init__(self) -> None:
        # Runs at Snakefile parse time in every process, dry-runs included: no network here.
        self.datasets = Datasets(
            core_overrides(self.settings),
            config_path(self.settings),
            self.logger,
            uuid_salt(self.settings),
        )
        _warn_about_secret_flags(self.logger)

    @classmethod
    def example_queries(cls) -> list[ExampleQuery]:
        return [
            ExampleQuery(
                query=f"dtool://raw-data/{_UUID}/reads/a.fq",
                description="item 'reads/a.fq' of the frozen dataset with that UUID in bucket "
                "raw-data (a unique dataset name works too)",
                type=QueryType.INPUT,
            ),
            ExampleQuery(
                query="dtool://results/alignments/a.bam",
                description="item 'a.bam' of the proto dataset 'alignments' in bucket results, "
                "created when missing",
                type=QueryType.OUTPUT,
            ),
            ExampleQuery(
                query="dtool://results/alignments/@frozen",
                description="freeze marker: storing it freezes the dataset 'alignments'",
                type=QueryType.ANY,
            ),
        ]

    @classmethod
    def is_valid_query(cls, query: str) -> StorageQueryValidationResult:
        try:
            parse_query(query)
        except QueryError as exc:
            return StorageQueryValidationResult(query=query, valid=False, reason=str(exc))
        return StorageQueryValidationResult(query=query, valid=True)

    def rate_limiter_key(self, query: str, operation: Operation) -> Any:
        return (self.settings.endpoint_url if self.settings else None) or "default"

    def default_max_requests_per_second(self) -> float:
        return 100.0

    def use_rate_limiter(self) -> bool:
        # The core retries throttled requests with backoff; a client-side limit would only
        # slow down the one-manifest-per-dataset reads.
        return False


_warned_lock = threading.Lock()
#: Flags already warned about in this process (every provider, tagged ones too, sees them).
_warned: set[str] = set()


def _warn_about_secret_flags(logger: logging.Logger) -> None:
    """Say once per process that a secret was given as a flag, and what that exposes.

    Only the process the user started can see it: Snakemake hands settings to spawned jobs as
    environment variables, never as flags.
    """
    with _warned_lock:
        flags = [flag for flag in secret_flags(sys.argv) if flag not in _warned]
        _warned.update(flags)
    if not flags:
        return
    variables = ", ".join(
        "SNAKEMAKE_STORAGE_DTOOL_" + flag.removeprefix("--storage-dtool-").replace("-", "_").upper()
        for flag in flags
    )
    logger.warning(
        f"{', '.join(flags)} on the command line: other users can read command lines in "
        "process listings, shells keep them in their history, and Snakemake writes these "
        "settings into cluster jobscripts (which --verbose copies into .snakemake/log/); put "
        "credentials into dtool's configuration (DTOOL_S3_*_<bucket> or dtool.json) instead, "
        f"or at least into {variables}"
    )
