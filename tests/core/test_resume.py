"""``dtool s3 cp --resume`` verifies before it skips (issue 19).

A resume keeps what is already at the destination only when it is this very dataset: another
dataset of the same UUID, a frozen copy that lost or changed an item, or a frozen copy with
another manifest is refused with one line, and nothing at the destination is written or frozen.
An interrupted copy of this dataset is finished: intact items are kept, damaged ones copied
again, items the source does not have removed. The server does not matter here, so the cases
run on moto only (``s3`` below).
"""

from __future__ import annotations

import json
import subprocess
import uuid as uuidlib
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import dtoolcore
import pytest

from dtool_s3_core import open_s3
from dtool_s3_core._dataset.dataset import S3Dataset
from dtool_s3_core._format.keys import identifier
from tests.conftest import Dtool, local_dataset, use_server
from tests.support.servers import S3Server

FILES = {"a.txt": b"alpha\n", "b.txt": b"bravo\n", "dir/c.txt": b"charlie\n"}


@pytest.fixture
def s3(moto: S3Server) -> S3Server:
    """The server does not matter here: moto, for ``bucket`` and ``dtool`` as well."""
    return moto


@pytest.fixture
def dest(s3: S3Server, dtool: Dtool) -> str:
    """A second bucket on the same server (so the copies are server-side), known to ``dtool``."""
    name = f"dst-{uuidlib.uuid4().hex[:10]}"
    s3.create_bucket(name)
    dtool.add_bucket(s3, name)
    return name


@pytest.fixture
def src_uri(dtool: Dtool, bucket: str, tmp_path: Path) -> str:
    """A frozen source dataset ``ds`` of three tiny items in ``bucket``."""
    local = local_dataset(tmp_path / "local", "ds", FILES)
    return dtool("s3", "cp", "-q", str(local), f"s3://{bucket}").strip()


# -- helpers -------------------------------------------------------------------------------------


def uuid_of(uri: str) -> str:
    return uri.rsplit("/", 1)[1]


def item_key(uri: str, relpath: str) -> str:
    return f"{uuid_of(uri)}/data/{identifier(relpath)}"


def objects(s3: S3Server, bucket: str) -> dict[str, str]:
    """Every key of the bucket with its ETag (a rewrite with other bytes changes it)."""
    pages = s3.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {o["Key"]: o["ETag"] for page in pages for o in page.get("Contents", [])}


def files(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def resume(dtool: Dtool, src_uri: str, dest_base: str) -> subprocess.CompletedProcess[str]:
    return dtool.run("s3", "cp", "--resume", src_uri, dest_base, check=False)


def refused(result: subprocess.CompletedProcess[str]) -> str:
    """The one line of a refusal: exit 1, no traceback, stderr is one ``Error:`` line."""
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert result.returncode == 1, f"exit {result.returncode}:\n{result.stdout}\n{result.stderr}"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


@pytest.fixture
def api(s3: S3Server, bucket: str, dest: str, tmp_path: Path) -> Iterator[None]:
    """The in-process API configured for both buckets (to build destination states by hand)."""
    with ExitStack() as stack:
        for name in (bucket, dest):
            stack.enter_context(use_server(s3, name, tmp_path))
        yield


def source_admin(src_uri: str) -> dict[str, Any]:
    return dict(dtoolcore.DataSet.from_uri(src_uri).admin_metadata)


def proto_at(dest: str, admin: dict[str, Any], items: dict[str, bytes], tmp: Path) -> S3Dataset:
    """A proto dataset in ``dest`` with these admin metadata and items (uploaded as dtool does)."""
    dataset = open_s3(f"s3://{dest}/{admin['uuid']}")
    dataset.create_proto({**admin, "type": "protodataset"})
    tmp.mkdir(parents=True, exist_ok=True)
    for number, (relpath, content) in enumerate(items.items()):
        (tmp / str(number)).write_bytes(content)
        dataset.upload(tmp / str(number), relpath)
    return dataset


def rewrite(s3: S3Server, bucket: str, key: str, body: bytes) -> None:
    """Replace an object's bytes, keeping its metadata (handle and checksum)."""
    metadata = s3.client().head_object(Bucket=bucket, Key=key)["Metadata"]
    s3.client().put_object(Bucket=bucket, Key=key, Body=body, Metadata=metadata)


# -- S3 destinations that are not this dataset, or not intact ------------------------------------


@pytest.mark.parametrize("state", ["proto", "frozen"])
def test_another_dataset_with_the_same_uuid_is_refused(
    dtool: Dtool, s3: S3Server, api: None, src_uri: str, dest: str, tmp_path: Path, state: str
) -> None:
    """(1) and (4, other admin metadata): never adopted, never frozen, not even its foreign item
    removed."""
    admin = {**source_admin(src_uri), "name": "other"}
    items = {"a.txt": FILES["a.txt"], "foreign.txt": b"not of the source\n"}
    impostor = proto_at(dest, admin, items, tmp_path / "impostor")
    if state == "frozen":
        impostor.freeze()
    before = objects(s3, dest)
    line = refused(resume(dtool, src_uri, f"s3://{dest}"))
    assert line == (
        f"Error: s3://{dest}/{uuid_of(src_uri)} holds another dataset with the source's UUID "
        f"(name 'other' is not the source's 'ds'): delete it with 'dtool s3 rm s3://{dest}/"
        f"{uuid_of(src_uri)}', or copy to another base URI"
    )
    assert objects(s3, dest) == before


def test_a_frozen_copy_that_lost_an_item_is_refused(
    dtool: Dtool, s3: S3Server, src_uri: str, dest: str
) -> None:
    """(2)"""
    uri = dtool("s3", "cp", "-q", src_uri, f"s3://{dest}").strip()
    s3.client().delete_object(Bucket=dest, Key=item_key(uri, "b.txt"))
    before = objects(s3, dest)
    line = refused(resume(dtool, src_uri, f"s3://{dest}"))
    assert line == (
        f"Error: the frozen copy at {uri} does not match the source (missing item: 'b.txt'): a "
        f"copy cannot repair a frozen dataset; delete it with 'dtool s3 rm {uri}' and copy again"
    )
    assert objects(s3, dest) == before


def test_a_frozen_copy_with_an_overwritten_item_is_refused(
    dtool: Dtool, s3: S3Server, src_uri: str, dest: str
) -> None:
    """(3) Same size, checksum metadata kept: only the bytes, and so the ETag, differ."""
    uri = dtool("s3", "cp", "-q", src_uri, f"s3://{dest}").strip()
    rewrite(s3, dest, item_key(uri, "a.txt"), b"ALPHA\n")
    before = objects(s3, dest)
    line = refused(resume(dtool, src_uri, f"s3://{dest}"))
    assert line == (
        f"Error: the frozen copy at {uri} does not match the source (ETag differs: 'a.txt'): a "
        f"copy cannot repair a frozen dataset; delete it with 'dtool s3 rm {uri}' and copy again"
    )
    assert objects(s3, dest) == before


def test_a_frozen_dataset_with_another_manifest_is_refused(
    dtool: Dtool, s3: S3Server, src_uri: str, dest: str
) -> None:
    uri = dtool("s3", "cp", "-q", src_uri, f"s3://{dest}").strip()
    key = f"{uuid_of(uri)}/manifest.json"
    found = s3.client().get_object(Bucket=dest, Key=key)
    manifest = json.loads(found["Body"].read())
    manifest["items"][identifier("b.txt")]["size_in_bytes"] = 7
    body = json.dumps(manifest).encode()
    s3.client().put_object(Bucket=dest, Key=key, Body=body, Metadata=found["Metadata"])
    before = objects(s3, dest)
    line = refused(resume(dtool, src_uri, f"s3://{dest}"))
    assert line == (
        f"Error: the frozen dataset at {uri} has another manifest than the source (size differs: "
        f"'b.txt'): delete it with 'dtool s3 rm {uri}', or copy to another base URI"
    )
    assert objects(s3, dest) == before


def test_an_intact_frozen_copy_is_kept(dtool: Dtool, s3: S3Server, src_uri: str, dest: str) -> None:
    uri = dtool("s3", "cp", "-q", src_uri, f"s3://{dest}").strip()
    before = objects(s3, dest)
    lines = dtool("s3", "cp", "--resume", src_uri, f"s3://{dest}").splitlines()
    assert "0 of 3 items" in lines[0] and "3 skipped (already present)" in lines[0]
    assert lines[-1] == uri
    assert objects(s3, dest) == before


# -- interrupted copies of this dataset are finished ---------------------------------------------


def test_an_interrupted_copy_loses_its_foreign_item(
    dtool: Dtool, s3: S3Server, api: None, src_uri: str, dest: str, tmp_path: Path
) -> None:
    """(4, same admin metadata) The foreign item and stray item metadata are removed before the
    freeze: what is frozen is exactly the source."""
    items = {"a.txt": FILES["a.txt"], "foreign.txt": b"not of the source\n"}
    partial = proto_at(dest, source_admin(src_uri), items, tmp_path / "partial")
    partial.put_item_metadata("a.txt", "stale", 1)
    foreign = item_key(partial.uri, "foreign.txt")
    assert foreign in objects(s3, dest)
    lines = dtool("s3", "cp", "--resume", src_uri, f"s3://{dest}").splitlines()
    assert "2 of 3 items" in lines[0] and "1 skipped (already present)" in lines[0]
    uri = lines[-1]
    assert uri == partial.uri and foreign not in objects(s3, dest)
    assert dtool("status", uri).strip() == "frozen"
    assert "All good" in dtool("verify", "-f", uri)
    assert dtool("s3", "verify", "--deep", uri).strip() == "All good :)"
    frozen = open_s3(uri)
    assert frozen.overlay_names() == [] and frozen.tags() == []
    assert sorted(e.relpath for e in frozen.entries().values()) == sorted(FILES)


def test_an_interrupted_copy_with_damaged_items_copies_them_again(
    dtool: Dtool, s3: S3Server, api: None, src_uri: str, dest: str, tmp_path: Path
) -> None:
    """(5) A truncated item, and one with other bytes of the same size (its checksum metadata
    kept): both copied again, counted as copied, not skipped."""
    partial = proto_at(dest, source_admin(src_uri), FILES, tmp_path / "partial")
    rewrite(s3, dest, item_key(partial.uri, "a.txt"), b"alp")
    rewrite(s3, dest, item_key(partial.uri, "b.txt"), b"BRAVO\n")
    lines = dtool("s3", "cp", "--resume", src_uri, f"s3://{dest}").splitlines()
    assert "2 of 3 items" in lines[0] and "1 skipped (already present)" in lines[0]
    assert dtool("s3", "verify", "--deep", lines[-1]).strip() == "All good :)"
    for relpath, content in FILES.items():
        body = s3.client().get_object(Bucket=dest, Key=item_key(partial.uri, relpath))["Body"]
        assert body.read() == content


# -- local destinations --------------------------------------------------------------------------


def local_copy(dtool: Dtool, src_uri: str, out: Path) -> tuple[str, Path]:
    out.mkdir()
    uri = dtool("s3", "cp", "-q", src_uri, str(out)).strip()
    return uri, out / "ds"


def test_a_local_dataset_with_other_admin_metadata_is_refused(
    dtool: Dtool, src_uri: str, tmp_path: Path
) -> None:
    """(6)"""
    uri, copied = local_copy(dtool, src_uri, tmp_path / "out")
    admin_path = copied / ".dtool" / "dtool"
    admin = json.loads(admin_path.read_text())
    admin_path.write_text(json.dumps({**admin, "name": "other", "type": "protodataset"}))
    before = files(tmp_path / "out")
    line = refused(resume(dtool, src_uri, str(tmp_path / "out")))
    assert line == (
        f"Error: {uri} holds another dataset with the source's UUID (name 'other' is not the "
        "source's 'ds'): delete it, or copy to another base URI"
    )
    assert files(tmp_path / "out") == before


def test_a_frozen_local_copy_that_lost_an_item_is_refused(
    dtool: Dtool, src_uri: str, tmp_path: Path
) -> None:
    uri, copied = local_copy(dtool, src_uri, tmp_path / "out")
    (copied / "data" / "b.txt").unlink()
    before = files(tmp_path / "out")
    line = refused(resume(dtool, src_uri, str(tmp_path / "out")))
    assert line == (
        f"Error: the frozen copy at {uri} does not match the source (missing item: 'b.txt'): a "
        "copy cannot repair a frozen dataset; delete it and copy again"
    )
    assert files(tmp_path / "out") == before
