"""dtool-s3-core: a fast, dtool-s3-compatible S3 storage broker for dtool, and a small API."""

from __future__ import annotations

from ._exit import wait_for_uploads as wait_for_uploads
from .api import DatasetInfo as DatasetInfo
from .api import copy as copy
from .api import copy_dataset as copy_dataset
from .api import create_dataset as create_dataset
from .api import find_dataset as find_dataset
from .api import freeze_dataset as freeze_dataset
from .api import list_datasets as list_datasets
from .api import open_s3 as open_s3
from .api import publish_dataset as publish_dataset
from .api import verify_dataset as verify_dataset
from .config import S3Config as S3Config
from .config import override as override
from .config import resolve_config as resolve_config
from .copier import CopyResult as CopyResult
from .dataset import S3Dataset as S3Dataset
from .errors import DtoolS3Error as DtoolS3Error

__version__ = "0.1.0"
