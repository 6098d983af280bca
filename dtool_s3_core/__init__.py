"""dtool-s3-core: a fast, dtool-s3-compatible S3 storage broker for dtool, and a small API.

The public names are loaded on first use (PEP 562): dtool imports every storage broker just to
list them, and that should not cost the whole API.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._dataset.barriers import wait_for_uploads as wait_for_uploads
    from ._dataset.dataset import S3Dataset as S3Dataset
    from ._ops.results import CopyResult as CopyResult
    from .api import DatasetInfo as DatasetInfo
    from .api import DeletionPlan as DeletionPlan
    from .api import ObjectBeside as ObjectBeside
    from .api import ObjectStat as ObjectStat
    from .api import TemporaryCredentials as TemporaryCredentials
    from .api import assume_role as assume_role
    from .api import bucket_of as bucket_of
    from .api import check_bucket as check_bucket
    from .api import check_dataset_name as check_dataset_name
    from .api import copy as copy
    from .api import copy_dataset as copy_dataset
    from .api import create_dataset as create_dataset
    from .api import delete_dataset as delete_dataset
    from .api import find_dataset as find_dataset
    from .api import find_or_create_dataset as find_or_create_dataset
    from .api import freeze_dataset as freeze_dataset
    from .api import is_dataset_uuid as is_dataset_uuid
    from .api import item_identifier as item_identifier
    from .api import list_buckets as list_buckets
    from .api import list_datasets as list_datasets
    from .api import open_s3 as open_s3
    from .api import open_source as open_source
    from .api import plan_dataset_deletion as plan_dataset_deletion
    from .api import publish_dataset as publish_dataset
    from .api import readme_text as readme_text
    from .api import verify_dataset as verify_dataset
    from .config import S3Config as S3Config
    from .config import override as override
    from .config import resolve_config as resolve_config
    from .errors import DtoolS3Error as DtoolS3Error

__version__ = "0.1.0"

_EXPORTS = {
    "wait_for_uploads": "_dataset.barriers",
    "DatasetInfo": "api",
    "DeletionPlan": "api",
    "ObjectBeside": "api",
    "ObjectStat": "api",
    "TemporaryCredentials": "api",
    "assume_role": "api",
    "bucket_of": "api",
    "check_bucket": "api",
    "check_dataset_name": "api",
    "copy": "api",
    "copy_dataset": "api",
    "create_dataset": "api",
    "delete_dataset": "api",
    "find_dataset": "api",
    "find_or_create_dataset": "api",
    "freeze_dataset": "api",
    "is_dataset_uuid": "api",
    "item_identifier": "api",
    "list_buckets": "api",
    "list_datasets": "api",
    "open_s3": "api",
    "open_source": "api",
    "plan_dataset_deletion": "api",
    "publish_dataset": "api",
    "readme_text": "api",
    "verify_dataset": "api",
    "S3Config": "config",
    "override": "config",
    "resolve_config": "config",
    "CopyResult": "_ops.results",
    "S3Dataset": "_dataset.dataset",
    "DtoolS3Error": "errors",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
