"""The Python API the integrations reuse: create, list, find, freeze, publish, many writers."""

from __future__ import annotations

import contextvars
import json
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dtoolcore
import pytest

from dtool_s3_core import (
    DtoolS3Error,
    copy_dataset,
    create_dataset,
    find_dataset,
    freeze_dataset,
    list_datasets,
    publish_dataset,
    verify_dataset,
    wait_for_uploads,
)
from tests.conftest import use_server
from tests.support.servers import S3Server


@pytest.fixture
def configured(s3: S3Server, bucket: str, tmp_path: Path) -> Iterator[str]:
    """The bucket, configured through a scoped override (as the integrations do)."""
    with use_server(s3, bucket, tmp_path):
        yield bucket


def test_create_list_find_freeze(configured: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "nested").mkdir(parents=True)
    (src / "a.txt").write_text("a")
    (src / "nested" / "b.txt").write_text("bb")
    uri = create_dataset("frozen-one", f"s3://{configured}", source_dir=src, readme={"k": "v"})
    proto_uri = create_dataset("proto-one", f"s3://{configured}", source_dir=src, freeze=False)
    infos = {info.name: info for info in list_datasets(f"s3://{configured}")}
    assert infos["frozen-one"].frozen and not infos["proto-one"].frozen
    assert infos["frozen-one"].uri == uri
    assert set(infos["frozen-one"].as_dict()) >= {"uri", "uuid", "name", "frozen", "created_at"}
    dataset = dtoolcore.DataSet.from_uri(uri)
    assert sorted(p["relpath"] for p in dataset.generate_manifest()["items"].values()) == [
        "a.txt",
        "nested/b.txt",
    ]
    assert 'k": "v' in dataset.get_readme_content()
    found = find_dataset(f"s3://{configured}", "proto-one")
    assert found is not None and found.uri == proto_uri
    assert freeze_dataset(proto_uri) == proto_uri
    assert freeze_dataset(proto_uri) == proto_uri
    assert dtoolcore.DataSet.from_uri(proto_uri).name == "proto-one"
    assert find_dataset(f"s3://{configured}", "nothing") is None


def test_publish_with_expiry(configured: str, tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("content")
    uri = create_dataset("pub", f"s3://{configured}", files={"x.txt": tmp_path / "x.txt"})
    url = publish_dataset(uri, expiry=120)
    base, query = url.split("?", 1)
    with urllib.request.urlopen(f"{base}/http_manifest.json?{query}") as response:
        manifest = json.loads(response.read())
    item_url = next(iter(manifest["item_urls"].values()))
    with urllib.request.urlopen(item_url) as response:
        assert response.read() == b"content"


def test_eight_concurrent_writers_lose_nothing(configured: str, tmp_path: Path) -> None:
    uri = create_dataset("shared", f"s3://{configured}", freeze=False)

    def writer(number: int) -> None:
        proto = dtoolcore.ProtoDataSet.from_uri(uri)
        for item in range(10):
            path = tmp_path / f"w{number}-{item}.txt"
            path.write_text(f"{number}/{item}")
            proto.put_item(str(path), f"writer{number}/item{item}.txt")
        wait_for_uploads()

    # Settings are per context (like separate processes): each writer thread gets a copy.
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(contextvars.copy_context().run, writer, n) for n in range(8)]
        for future in futures:
            future.result()
    freeze_dataset(uri)
    dataset = dtoolcore.DataSet.from_uri(uri)
    assert len(dataset.identifiers) == 80
    for ident in dataset.identifiers:
        relpath = dataset.item_properties(ident)["relpath"]
        number, item = relpath.removeprefix("writer").removesuffix(".txt").split("/item")
        assert Path(dataset.item_content_abspath(ident)).read_text() == f"{number}/{item}"


def test_api_mistakes_are_one_line_errors(configured: str, tmp_path: Path) -> None:
    base = f"s3://{configured}"
    with pytest.raises(DtoolS3Error, match="local file not found"):
        create_dataset("typo", base, files={"a.txt": tmp_path / "no-such-file"})
    assert list_datasets(base) == []
    (tmp_path / "a.txt").write_text("a")
    proto = create_dataset("proto", base, files={"a.txt": tmp_path / "a.txt"}, freeze=False)
    missing = f"{base}/00000000-0000-4000-8000-000000000000"
    for uri in (proto, missing):
        for call in (verify_dataset, publish_dataset):
            with pytest.raises(DtoolS3Error) as caught:
                call(uri)
            assert "\n" not in str(caught.value)
        with pytest.raises(DtoolS3Error):
            copy_dataset(uri, (tmp_path / "copies").as_uri())
