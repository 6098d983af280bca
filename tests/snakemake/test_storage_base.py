"""The storage-plugin interface's own conformance tests, against a loopback S3 server."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from snakemake_interface_storage_plugins.tests import TestStorageBase
from snakemake_storage_plugin_dtool import StorageProvider, StorageProviderSettings

from tests.support.servers import S3Server

from .conftest import make_input, new_bucket


class _Base(TestStorageBase):  # type: ignore[misc]
    __test__ = False
    server: S3Server
    bucket: str

    @pytest.fixture(autouse=True)
    def _server(self, moto: S3Server) -> None:
        self.server = moto

    def get_storage_provider_cls(self) -> type[StorageProvider]:
        return StorageProvider

    def get_storage_provider_settings(self) -> StorageProviderSettings:
        return StorageProviderSettings(
            endpoint_url=self.server.endpoint_url,
            access_key=self.server.access_key,
            secret_key=self.server.secret_key,
        )


class TestReadWrite(_Base):
    """Items and directories stored into a proto dataset that the plugin creates."""

    __test__ = True
    files_only = False

    def get_query(self, tmp_path: Path) -> str:
        if not hasattr(self, "bucket"):
            self.bucket = new_bucket(self.server, "rw")
        return f"dtool://{self.bucket}/proto-{tmp_path.name}/dir/item.txt"

    def get_query_not_existing(self, tmp_path: Path) -> str:
        return f"dtool://{self.get_query(tmp_path).split('/')[2]}/absent-{uuid.uuid4().hex}/x"


class TestReadOnly(_Base):
    """Items of a frozen dataset, by UUID: answered from its manifest."""

    __test__ = True
    retrieve_only = True

    def get_query(self, tmp_path: Path) -> str:
        if not hasattr(self, "uri"):
            self.bucket = new_bucket(self.server, "ro")
            self.uri = make_input(self.server, self.bucket, tmp_path)
        return self.uri.replace("s3://", "dtool://") + "/reads/a.fq"

    def get_query_not_existing(self, tmp_path: Path) -> str:
        return self.get_query(tmp_path).replace("reads/a.fq", "reads/missing.fq")
