"""Storage objects driven directly, as Snakemake drives them: freezing, immutability, mtimes,
directories, the inventory, and bad output names."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from pathlib import Path
from typing import Any

import pytest
from snakemake.io import IOCache
from snakemake_interface_common.exceptions import WorkflowError
from snakemake_storage_plugin_dtool import StorageProvider, StorageProviderSettings
from snakemake_storage_plugin_dtool.freezing import register_readme

from tests.support.servers import S3Server


@pytest.fixture
def provider(moto: S3Server, tmp_path: Path) -> StorageProvider:
    return new_provider(moto, tmp_path / "local")


def new_provider(server: S3Server, local: Path) -> StorageProvider:
    """A provider with empty caches, as a new Snakemake process would have."""
    return StorageProvider(
        local_prefix=local,
        logger=logging.getLogger("test"),
        settings=StorageProviderSettings(
            endpoint_url=server.endpoint_url,
            access_key=server.access_key,
            secret_key=server.secret_key,
        ),
    )


def store(provider: StorageProvider, query: str, content: str | None = None) -> Any:
    obj = provider.object(query)
    path = obj.local_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if content is not None else query)
    obj.store_object()
    return obj


def test_item_mtime_and_checksum_survive_the_freeze(
    provider: StorageProvider, moto: S3Server, results_bucket: str, tmp_path: Path
) -> None:
    query = f"dtool://{results_bucket}/ds/sub/a.txt"
    item = store(provider, query, "hello\n")
    before = (item.mtime(), item.size(), item.checksum())
    assert before[1:] == (6, "md5:" + hashlib.md5(b"hello\n").hexdigest())

    store(provider, f"dtool://{results_bucket}/ds/@frozen", "")

    fresh = new_provider(moto, tmp_path / "other").object(query)
    assert (fresh.mtime(), fresh.size(), fresh.checksum()) == before


def test_marker_exists_once_frozen_and_freezing_is_idempotent(
    provider: StorageProvider, moto: S3Server, results_bucket: str
) -> None:
    store(provider, f"dtool://{results_bucket}/ds/a.txt")
    marker = provider.object(f"dtool://{results_bucket}/ds/@frozen")
    assert not marker.exists()
    register_readme(results_bucket, "ds", {"project": "objects"})

    store(provider, marker.query, "")
    frozen_at = marker.mtime()
    store(provider, marker.query, "")

    assert marker.exists()
    assert marker.mtime() == frozen_at
    marker.local_path().unlink()
    marker.retrieve_object()
    document = json.loads(marker.local_path().read_text())
    assert document["name"] == "ds"
    assert document["frozen_at"] == frozen_at
    key = f"{document['uuid']}/README.yml"
    readme = moto.client().get_object(Bucket=results_bucket, Key=key)["Body"].read()
    assert readme == b'---\n"project": "objects"\n'


def test_frozen_datasets_refuse_writes_and_removals(
    provider: StorageProvider, results_bucket: str
) -> None:
    item = store(provider, f"dtool://{results_bucket}/ds/a.txt", "one\n")
    store(provider, f"dtool://{results_bucket}/ds/@frozen", "")

    with pytest.raises(WorkflowError, match=r"dataset 'ds' \(s3://.*\) is frozen.*'ds-v2'"):
        store(provider, f"dtool://{results_bucket}/ds/b.txt")
    with pytest.raises(WorkflowError, match="is frozen"):
        store(provider, item.query, "changed\n")
    with pytest.raises(WorkflowError, match="is frozen"):
        item.remove()
    provider.object(item.query, retrieve=False).remove()

    item.local_path().unlink()
    item.retrieve_object()
    assert item.local_path().read_text() == "one\n"
    assert not provider.object(f"dtool://{results_bucket}/ds/b.txt").exists()


def test_directory_outputs_become_items_without_snakemake_markers(
    provider: StorageProvider, results_bucket: str
) -> None:
    obj = provider.object(f"dtool://{results_bucket}/ds/out")
    root = obj.local_path()
    (root / "deep").mkdir(parents=True)
    (root / "x.txt").write_text("x")
    (root / "deep" / "y.txt").write_text("yy")
    (root / ".snakemake_timestamp").write_text("")
    obj.store_object()

    dataset = provider.datasets.find(results_bucket, "ds")
    assert dataset is not None
    assert sorted(provider.datasets.items(dataset)) == ["out/deep/y.txt", "out/x.txt"]
    assert obj.exists()
    assert obj.size() == 0
    assert obj.local_footprint() == 3

    empty = provider.object(f"dtool://{results_bucket}/ds/empty")
    empty.local_path().mkdir(parents=True)
    with pytest.raises(WorkflowError, match="holds no files"):
        empty.store_object()

    obj.remove()
    assert not obj.exists()


def test_inventory_fills_the_cache_for_the_whole_dataset(
    provider: StorageProvider, results_bucket: str
) -> None:
    for relpath in ("a.txt", "d/b.txt", "d/e/c.txt"):
        store(provider, f"dtool://{results_bucket}/ds/{relpath}")
    store(provider, f"dtool://{results_bucket}/ds/@frozen", "")
    obj = provider.object(f"dtool://{results_bucket}/ds/a.txt")
    cache = IOCache(max_wait_time=10)

    asyncio.run(obj.inventory(cache))

    assert obj.get_inventory_parent() in cache.exists_in_storage.has_inventory
    for relpath in ("a.txt", "d/b.txt", "d/e/c.txt", "d", "d/e", "@frozen"):
        key = obj.cache_key(f"{results_bucket}/ds/{relpath}")
        assert cache.exists_in_storage[key] is True
        assert cache.mtime[key].storage() is not None
    assert str(obj.cache_key(f"{results_bucket}/ds/missing")) not in cache.exists_in_storage


def test_output_datasets_need_a_valid_name(provider: StorageProvider, results_bucket: str) -> None:
    with pytest.raises(WorkflowError, match="invalid dataset name 'bad name!'"):
        store(provider, f"dtool://{results_bucket}/bad name!/a.txt")
    with pytest.raises(WorkflowError, match="name output datasets by name"):
        store(provider, f"dtool://{results_bucket}/{uuid.uuid4()}/a.txt")
    assert not provider.object(f"dtool://{results_bucket}/nothing/a.txt").exists()


def test_dataset_prefix_places_new_datasets(
    moto: S3Server, results_bucket: str, tmp_path: Path
) -> None:
    provider = StorageProvider(
        local_prefix=tmp_path / "prefixed",
        logger=logging.getLogger("test"),
        settings=StorageProviderSettings(
            endpoint_url=moto.endpoint_url,
            access_key=moto.access_key,
            secret_key=moto.secret_key,
            dataset_prefix="u/me",
        ),
    )
    store(provider, f"dtool://{results_bucket}/pre/a.txt")

    dataset = provider.datasets.find(results_bucket, "pre")
    assert dataset is not None
    assert dataset.s3.layout.prefix == "u/me/"
    listing = moto.client().list_objects_v2(Bucket=results_bucket)["Contents"]
    keys = {entry["Key"] for entry in listing}
    assert f"u/me/{dataset.uuid}/data/{hashlib.sha1(b'a.txt').hexdigest()}" in keys
    assert f"dtool-{dataset.uuid}" in keys
    # Readers need no prefix setting: the registration key says where the dataset lives.
    other = new_provider(moto, tmp_path / "plain").datasets.find(results_bucket, "pre")
    assert other is not None
    assert other.uuid == dataset.uuid
