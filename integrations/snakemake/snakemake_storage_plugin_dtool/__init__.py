"""Snakemake storage plugin ``dtool``: items of dtool datasets in S3 as Snakemake inputs/outputs.

Queries are ``dtool://<bucket>/<dataset-uuid-or-name>/<relpath>``; ``.../@frozen`` is the freeze
marker of a dataset. See the README of this package for usage and semantics.
"""

from .provider import StorageProvider as StorageProvider
from .settings import StorageProviderSettings as StorageProviderSettings
from .storage_object import StorageObject as StorageObject

__all__ = ["StorageObject", "StorageProvider", "StorageProviderSettings"]
