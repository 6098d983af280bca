"""Local datasets as copy sources: item paths from one manifest read, still right after changes."""

from __future__ import annotations

import json
from pathlib import Path

import dtoolcore
from dtoolcore.storagebroker import DiskStorageBroker

import dtool_s3_core.broker  # noqa: F401 - installs the disk source speed-up
from tests.conftest import make_source_dataset


def test_item_paths_match_and_follow_a_rewritten_manifest(tmp_path: Path) -> None:
    uri = make_source_dataset(tmp_path).as_uri()
    dataset = dtoolcore.DataSet.from_uri(uri)
    broker = dataset._storage_broker
    for ident in dataset.identifiers:
        relpath = dataset.item_properties(ident)["relpath"]
        assert Path(broker.get_item_abspath(ident)) == Path(broker._data_abspath) / relpath

    manifest_path = Path(broker.get_manifest_key())
    manifest = json.loads(manifest_path.read_text())
    ident = next(iter(manifest["items"]))
    manifest["items"][ident]["relpath"] = "renamed/elsewhere.txt"
    manifest_path.write_text(json.dumps(manifest, indent=2))
    assert broker.get_item_abspath(ident).endswith("renamed/elsewhere.txt")


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
