"""The Python API the integrations reuse: create, list, find (one rule for names), freeze,
publish, many writers, objects beside the datasets, bucket checks."""

from __future__ import annotations

import contextvars
import hashlib
import json
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import dtoolcore
import pytest

from dtool_s3_core import (
    DtoolS3Error,
    ObjectBeside,
    bucket_of,
    check_bucket,
    check_dataset_name,
    copy_dataset,
    create_dataset,
    find_dataset,
    find_or_create_dataset,
    freeze_dataset,
    is_dataset_uuid,
    item_identifier,
    list_buckets,
    list_datasets,
    override,
    publish_dataset,
    resolve_config,
    verify_dataset,
    wait_for_uploads,
)
from dtool_s3_core._dataset.dataset import S3Dataset
from dtool_s3_core._ops.finding import AWS_ENDPOINT, legacy_uuid
from dtool_s3_core.api import deterministic_uuid, uuid_endpoint
from dtool_s3_core.errors import BucketNotFound, ConfigurationError, DatasetStateError
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


def test_deterministic_uuids_never_change() -> None:
    # Datasets made so far are found by these values: they must stay the same forever.
    aws = "8ae7e257-e051-5701-a72b-5aea6266041a"
    assert deterministic_uuid("bucket", "", "results", endpoint_url=None) == aws
    for url in ("https://s3.eu-west-1.amazonaws.com", "http://s3.amazonaws.com:80/"):
        assert deterministic_uuid("bucket", "", "results", endpoint_url=url) == aws
    local = deterministic_uuid("bucket", "", "results", endpoint_url="http://127.0.0.1:9000")
    assert local == "86fc273d-9b6f-559c-8b61-4dc0b34708e4"
    salted = deterministic_uuid(
        "bucket", "", "results", endpoint_url="http://127.0.0.1:9000", salt="site-a"
    )
    assert salted == "3a76917a-4d44-5a0a-b0f3-fffa49be4b78"
    # Release 0.1.0's rule, still found by name.
    assert legacy_uuid("bucket", "", "results") == "db1c975e-5fc8-51da-a647-7d2187c301ac"
    others = {
        deterministic_uuid("bucket2", "", "results", endpoint_url=None),
        deterministic_uuid("bucket", "u/me/", "results", endpoint_url=None),
        deterministic_uuid("bucket", "", "results2", endpoint_url=None),
    }
    assert len(others | {aws, local, salted}) == 6
    with pytest.raises(ConfigurationError) as caught:
        deterministic_uuid("bucket", "", "results", endpoint_url=None, salt="a b")
    assert str(caught.value) == (
        "the dataset UUID salt 'a b' is not 1-80 letters, digits, '-', '_' or '.': choose one "
        "such as 'site-a'"
    )


def test_the_endpoint_in_uuids_is_normalised() -> None:
    assert uuid_endpoint("HTTP://user:secret@Host.Example:80/") == "http://host.example"
    assert uuid_endpoint("https://h.example:443") == "https://h.example"
    assert uuid_endpoint("https://h.example:8443") == "https://h.example:8443"
    assert uuid_endpoint("http://[::1]:9000") == "http://[::1]:9000"
    assert uuid_endpoint(None) == uuid_endpoint("https://s3.amazonaws.com") == AWS_ENDPOINT


def test_small_helpers() -> None:
    assert bucket_of("s3://my-bucket/some/path") == "my-bucket"
    with pytest.raises(ConfigurationError, match="not an S3 URI"):
        bucket_of("/local/dir")
    assert is_dataset_uuid("db1c975e-5fc8-51da-a647-7d2187c301ac")
    for text in ("DB1C975E-5FC8-51DA-A647-7D2187C301AC", "db1c975e-5fc8-51da-a647-7d2187c301ac\n"):
        assert not is_dataset_uuid(text)
    check_dataset_name("run-42_v1.0")
    with pytest.raises(ConfigurationError, match="invalid dataset name 'bad name!'"):
        check_dataset_name("bad name!")
    assert item_identifier("a/b.txt") == hashlib.sha1(b"a/b.txt").hexdigest()


def test_find_or_create_is_idempotent(configured: str, s3: S3Server) -> None:
    base = f"s3://{configured}"
    info, created = find_or_create_dataset(base, "results")
    again, created_again = find_or_create_dataset(base, "results")

    assert (created, created_again) == (True, False)
    assert again == info
    assert info.uuid == deterministic_uuid(configured, "", "results", endpoint_url=s3.endpoint_url)
    assert info.name == "results" and not info.frozen
    assert [i.uuid for i in list_datasets(base)] == [info.uuid]
    freeze_dataset(info.uri)
    frozen, created = find_or_create_dataset(base, "results")
    assert frozen.uuid == info.uuid and frozen.frozen and not created
    with pytest.raises(ConfigurationError, match="invalid dataset name"):
        find_or_create_dataset(base, "bad name!")
    with pytest.raises(ConfigurationError, match="s3:// base URI"):
        find_or_create_dataset("/local/dir", "results")


def test_the_dataset_made_for_a_name_wins_over_namesakes(configured: str) -> None:
    base = f"s3://{configured}"
    own, _ = find_or_create_dataset(base, "twin")
    create_dataset("twin", base)

    def no_listing() -> list[Any]:
        raise AssertionError("the dataset made for the name needs no listing")

    assert find_dataset(base, "twin", listing=no_listing) == own
    assert find_or_create_dataset(base, "twin", listing=no_listing) == (own, False)


def test_salted_names_and_datasets_of_release_0_1_0(configured: str, s3: S3Server) -> None:
    base = f"s3://{configured}"
    salted, _ = find_or_create_dataset(base, "salted", salt="site-a")
    assert salted.uuid == deterministic_uuid(
        configured, "", "salted", endpoint_url=s3.endpoint_url, salt="site-a"
    )
    # A proto dataset made under 0.1.0's rule, and a namesake another tool made since.
    old = S3Dataset(resolve_config(configured), legacy_uuid(configured, "", "old"))
    admin = dtoolcore.generate_admin_metadata("old")
    admin["uuid"] = old.uuid
    old.create_proto(admin)
    create_dataset("old", base)

    def no_listing() -> list[Any]:
        raise AssertionError("a dataset of 0.1.0's rule needs no listing")

    found, created = find_or_create_dataset(base, "old", listing=no_listing)
    assert (found.uri, found.frozen, created) == (old.uri, False, False)


def test_several_namesakes_are_an_error_that_names_them(configured: str) -> None:
    base = f"s3://{configured}"
    uris = sorted(create_dataset("dup", base) for _ in range(2))
    message = f"2 datasets are named 'dup' in {base} ({', '.join(uris)}): use a UUID URI instead"

    for call in (find_dataset, find_or_create_dataset):
        with pytest.raises(DatasetStateError) as caught:
            call(base, "dup")
        assert str(caught.value) == message
    assert len(list_datasets(base)) == 2


def test_a_unique_namesake_is_found_and_a_kept_listing_is_used(configured: str) -> None:
    base = f"s3://{configured}"
    uri = create_dataset("other-tool", base, freeze=False)

    found, created = find_or_create_dataset(base, "other-tool")
    assert found.uri == uri and not created
    assert find_dataset(base, "other-tool", listing=list) is None


def test_a_renamed_dataset_is_not_taken_for_its_old_name(configured: str) -> None:
    base = f"s3://{configured}"
    info, _ = find_or_create_dataset(base, "before")
    dtoolcore.ProtoDataSet.from_uri(info.uri).update_name("after")

    assert find_dataset(base, "before") is None
    with pytest.raises(DatasetStateError, match="has another name now"):
        find_or_create_dataset(base, "before")


def test_objects_beside_the_datasets(configured: str, s3: S3Server, tmp_path: Path) -> None:
    base = f"s3://{configured}"
    with override(configured, dataset_prefix="u/me"):
        stored = ObjectBeside(base, ".tool/run/state.bin")
    assert stored.uri == f"{base}/u/me/.tool/run/state.bin"
    assert stored.stat() is None
    source = tmp_path / "state.bin"
    source.write_bytes(b"state")

    stored.upload(source)
    stat = stored.stat()
    assert stat is not None and stat.size == 5 and stat.modified > 0
    stored.download(tmp_path / "back" / "state.bin")
    assert (tmp_path / "back" / "state.bin").read_bytes() == b"state"
    key = "u/me/.tool/run/state.bin"
    assert s3.client().get_object(Bucket=configured, Key=key)["Body"].read() == b"state"
    assert list_datasets(base) == []
    stored.delete()
    stored.delete()
    assert stored.stat() is None

    for path in (
        deterministic_uuid(configured, "", "x", endpoint_url=None) + "/data/x",
        "dtool-x",
        "../up",
        "",
    ):
        with pytest.raises(ConfigurationError, match="object path"):
            ObjectBeside(base, path)


def test_check_bucket_and_list_buckets(configured: str, s3: S3Server, tmp_path: Path) -> None:
    check_bucket(f"s3://{configured}")
    assert configured in list_buckets(resolve_config(configured))
    missing = f"missing-{uuid.uuid4().hex[:12]}"
    with use_server(s3, missing, tmp_path), pytest.raises(BucketNotFound) as caught:
        check_bucket(f"s3://{missing}")
    assert str(caught.value).startswith(f"bucket '{missing}' does not exist at ")
