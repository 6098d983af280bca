"""Local datasets as copy sources (the dtool CLI's disk-broker cache): item paths from one
manifest read, still right after changes, and dtoolcore's own answer for a hostile relpath."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import dtoolcore
import pytest
from dtoolcore.storagebroker import DiskStorageBroker

from dtool_s3_core.cli import _diskcache
from tests.conftest import make_source_dataset


@pytest.fixture(autouse=True)
def disk_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Install the cache as the dtool CLI does, undone after the test."""
    if not _diskcache.applies():
        pytest.skip(f"the cache is not written for dtoolcore {dtoolcore.__version__}")
    monkeypatch.setattr(DiskStorageBroker, "get_item_abspath", DiskStorageBroker.get_item_abspath)
    monkeypatch.setattr(_diskcache, "_installed", threading.Event())
    _diskcache.install()


def test_item_paths_match_and_follow_a_rewritten_manifest(tmp_path: Path) -> None:
    root = make_source_dataset(tmp_path)
    dataset = dtoolcore.DataSet.from_uri(root.as_uri())
    for ident in dataset.identifiers:
        relpath = dataset.item_properties(ident)["relpath"]
        assert Path(dataset.item_content_abspath(ident)) == root / "data" / relpath

    manifest_path = root / ".dtool" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    ident = next(iter(manifest["items"]))
    manifest["items"][ident]["relpath"] = "renamed/elsewhere.txt"
    manifest_path.write_text(json.dumps(manifest, indent=2))
    assert dataset.item_content_abspath(ident).endswith("renamed/elsewhere.txt")


def test_manifest_is_read_once_per_copy(tmp_path: Path, monkeypatch) -> None:
    uri = make_source_dataset(tmp_path).as_uri()
    dataset = dtoolcore.DataSet.from_uri(uri)
    reads = []
    original = DiskStorageBroker.get_manifest
    monkeypatch.setattr(
        DiskStorageBroker, "get_manifest", lambda self: reads.append(1) or original(self)
    )
    identifiers = dataset.identifiers
    for ident in identifiers:
        dataset.item_content_abspath(ident)
    # One read for the identifiers, one for the path map: constant, not one per item.
    assert len(identifiers) > 2 and len(reads) <= 2
