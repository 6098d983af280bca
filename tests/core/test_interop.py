"""Two-way compatibility with dtool-s3 0.14.1 (the oracle CLI), on every loopback server.

Datasets written by the oracle are read, verified, copied and amended by our CLI, and the
other way round; the keys our broker writes are checked against the on-bucket format
(format spec, sections 2, 3 and 8).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SOURCE_FILES, Dtool, make_source_dataset
from tests.support.servers import S3Server

MiB = 1024 * 1024
UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
REGISTRATION_RE = re.compile(rf"^dtool-({UUID_RE})$")
ALL_RELPATHS = {*SOURCE_FILES, "big.bin"}
# Section 2.5: structure.json holds exactly these keys; all but two have fixed values.
STRUCTURE_FIXED = {
    "admin_metadata_key_suffix": "dtool",
    "annotations_key_infix": "annotations",
    "data_key_infix": "data",
    "dataset_readme_key_suffix": "README.yml",
    "dtool_readme_key_suffix": "README.txt",
    "fragment_key_infix": "fragments",
    "http_manifest_key": "http_manifest.json",
    "manifest_key_suffix": "manifest.json",
    "overlays_key_infix": "overlays",
    "structure_key_suffix": "structure.json",
    "tags_key_infix": "tags",
}
STRUCTURE_KEYS = {*STRUCTURE_FIXED, "dataset_registration_key", "storage_broker_version"}
ADMIN_KEYS = {"uuid", "dtoolcore_version", "name", "type", "creator_username", "created_at"}
NEW_README = "---\ndescription: updated by the other side\n"


# -- helpers ---------------------------------------------------------------------------------


def uuid_of(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[1]


def copy_to_s3(runner: Dtool, source: Path | str, bucket: str) -> str:
    """``dtool cp -q`` and return the new dataset URI."""
    uri = runner("cp", "-q", str(source), f"s3://{bucket}").strip().splitlines()[-1]
    assert re.fullmatch(rf"s3://{re.escape(bucket)}/{UUID_RE}", uri), uri
    return uri


def create_in_s3(runner: Dtool, name: str, bucket: str) -> str:
    uri = runner("create", "-q", name, f"s3://{bucket}").strip().splitlines()[-1]
    assert re.fullmatch(rf"s3://{re.escape(bucket)}/{UUID_RE}", uri), uri
    return uri


def list_keys(s3: S3Server, bucket: str) -> dict[str, int]:
    """All keys of ``bucket`` with their sizes."""
    keys: dict[str, int] = {}
    for page in s3.client().get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys.update({obj["Key"]: obj["Size"] for obj in page.get("Contents", [])})
    return keys


def get_body(s3: S3Server, bucket: str, key: str) -> bytes:
    body: bytes = s3.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def identifier(relpath: str) -> str:
    return hashlib.sha1(relpath.encode("utf-8")).hexdigest()


def source_contents(local: Path) -> dict[str, bytes]:
    """Relpath -> bytes of the items of a local (disk) dataset."""
    manifest = json.loads((local / ".dtool" / "manifest.json").read_text())
    return {
        item["relpath"]: (local / "data" / item["relpath"]).read_bytes()
        for item in manifest["items"].values()
    }


def assert_local_copy_equal(copy: Path, expected: dict[str, bytes]) -> None:
    """The items of a dataset copied to disk have exactly the expected relpaths and bytes."""
    manifest = json.loads((copy / ".dtool" / "manifest.json").read_text())
    assert {item["relpath"] for item in manifest["items"].values()} == set(expected)
    for relpath, content in expected.items():
        assert (copy / "data" / relpath).read_bytes() == content, relpath


def listed_relpaths(listing: str) -> set[str]:
    """Relpaths of ``dtool ls <dataset>``: one ``<identifier>\\t<relpath>`` line per item."""
    relpaths = set()
    for line in listing.splitlines():
        ident, relpath = line.split("\t", 1)
        assert ident == identifier(relpath), line
        relpaths.add(relpath)
    return relpaths


def overlay_table(csv_text: str) -> dict[str, dict[str, str]]:
    """``dtool overlays show`` CSV as relpath -> {overlay: value}."""
    table = {}
    for row in csv.DictReader(io.StringIO(csv_text)):
        assert row.pop("identifiers") == identifier(row["relpaths"]), row
        table[row.pop("relpaths")] = row
    return table


def assert_dataset_listed(listing: str, name: str, uri: str) -> None:
    assert name in listing, listing
    assert uri in listing, listing


# -- 1. the oracle writes, we read -----------------------------------------------------------


def test_oracle_writes_we_read(dtool: Dtool, oracle: Dtool, bucket: str, tmp_path: Path) -> None:
    # 20 MiB + 123 B exceeds boto3's 8 MiB threshold: the oracle uploads it in 3 parts.
    local = make_source_dataset(tmp_path / "local", big_size=20 * MiB + 123)
    expected = source_contents(local)
    assert set(expected) == ALL_RELPATHS
    uri = copy_to_s3(oracle, local, bucket)

    assert_dataset_listed(dtool("ls", f"s3://{bucket}"), "ds1", uri)
    assert listed_relpaths(dtool("ls", uri)) == ALL_RELPATHS
    summary = json.loads(dtool("summary", "--format", "json", uri))
    assert summary["name"] == "ds1"
    assert summary["uuid"] == uuid_of(uri)
    assert summary["number_of_items"] == 5
    assert summary["size_in_bytes"] == sum(len(c) for c in expected.values())
    assert summary["frozen_at"] > 0
    assert "All good" in dtool("verify", uri)
    assert "All good" in dtool("verify", "-f", uri)

    (tmp_path / "out").mkdir()
    dtool("cp", uri, str(tmp_path / "out"))
    copy = tmp_path / "out" / "ds1"
    assert_local_copy_equal(copy, expected)
    diff = dtool.run("diff", "--full", str(local), str(copy), check=False)
    assert diff.returncode == 0, diff.stdout + diff.stderr

    overlays = overlay_table(dtool("overlays", "show", uri))
    assert set(overlays) == ALL_RELPATHS
    for relpath, row in overlays.items():
        assert row["kind"] == f"k-{len(relpath)}"

    # The oracle amends the frozen dataset; we read the amendments.
    oracle("tag", "set", uri, "from-oracle")
    oracle("annotation", "set", uri, "project", "interop")
    oracle.run("readme", "write", uri, "-", stdin=NEW_README)

    assert dtool("tag", "ls", uri).split() == ["from-oracle"]
    assert dtool("annotation", "ls", uri).splitlines() == ["project\tinterop"]
    readme = dtool("readme", "show", uri)
    assert "updated by the other side" in readme
    assert "round trip test" not in readme


# -- 2. we write, the oracle reads -----------------------------------------------------------


def test_we_write_oracle_reads(
    dtool: Dtool, oracle: Dtool, s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    dtool.env["DTOOL_S3_MULTIPART_THRESHOLD"] = "8MiB"
    dtool.env["DTOOL_S3_MULTIPART_PART_SIZE"] = "5MiB"
    local = make_source_dataset(tmp_path / "local", big_size=12 * MiB)
    expected = source_contents(local)
    uri = copy_to_s3(dtool, local, bucket)
    uuid = uuid_of(uri)
    big = s3.client().head_object(Bucket=bucket, Key=f"{uuid}/data/{identifier('big.bin')}")
    assert big["ETag"].strip('"').endswith("-3"), big["ETag"]  # 5 + 5 + 2 MiB parts

    dtool("tag", "set", uri, "from-us")
    dtool("annotation", "set", uri, "project", "interop")
    dtool("annotation", "set", uri, "numbers", "[1, 2, 3]", "--type", "json")
    dtool.run("readme", "write", uri, "-", stdin=NEW_README)

    assert_dataset_listed(oracle("ls", f"s3://{bucket}"), "ds1", uri)
    assert listed_relpaths(oracle("ls", uri)) == ALL_RELPATHS
    assert "All good" in oracle("verify", uri)
    assert "All good" in oracle("verify", "-f", uri)
    summary = json.loads(oracle("summary", "--format", "json", uri))
    assert summary["name"] == "ds1"
    assert summary["uuid"] == uuid
    assert summary["number_of_items"] == 5
    assert summary["size_in_bytes"] == sum(len(c) for c in expected.values())
    assert summary["creator_username"]
    assert summary["frozen_at"] > 0

    assert oracle("tag", "ls", uri).split() == ["from-us"]
    annotations = oracle("annotation", "ls", uri).splitlines()
    assert sorted(annotations) == ["numbers\t[1, 2, 3]", "project\tinterop"]
    readme = oracle("readme", "show", uri)
    assert "updated by the other side" in readme
    assert "round trip test" not in readme

    (tmp_path / "out").mkdir()
    oracle("cp", uri, str(tmp_path / "out"))
    assert_local_copy_equal(tmp_path / "out" / "ds1", expected)


# -- 3. proto datasets created by one side, frozen by the other ------------------------------


def _fill_proto(runner: Dtool, uri: str, tmp_path: Path) -> None:
    (tmp_path / "b.txt").write_text("bee\n")
    (tmp_path / "c.txt").write_text("")
    runner("add", "item", str(tmp_path / "b.txt"), uri, "a/b.txt")
    runner("add", "item", str(tmp_path / "c.txt"), uri, "c.txt")
    runner("add", "metadata", uri, "a/b.txt", "colour", "red")
    runner("add", "metadata", uri, "c.txt", "colour", "blue")


def test_we_create_in_s3_oracle_freezes(
    dtool: Dtool, oracle: Dtool, s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    expected = {"a/b.txt": b"bee\n", "c.txt": b""}
    colours = {"a/b.txt": "red", "c.txt": "blue"}

    # We create and fill a proto dataset; the oracle freezes it; we verify it.
    ours = create_in_s3(dtool, "ds2", bucket)
    (tmp_path / "ours").mkdir()
    _fill_proto(dtool, ours, tmp_path / "ours")
    fragments = {k for k in list_keys(s3, bucket) if "/fragments/" in k}
    assert fragments == {f"{uuid_of(ours)}/fragments/{identifier(r)}.colour.json" for r in colours}
    oracle("freeze", ours)
    assert "All good" in dtool("verify", "-f", ours)
    assert listed_relpaths(dtool("ls", ours)) == set(expected)
    overlays = overlay_table(dtool("overlays", "show", ours))
    assert {relpath: row["colour"] for relpath, row in overlays.items()} == colours
    assert not [k for k in list_keys(s3, bucket) if "/fragments/" in k]

    # The oracle creates and fills a proto dataset; we freeze it; the oracle verifies it.
    theirs = create_in_s3(oracle, "ds3", bucket)
    (tmp_path / "theirs").mkdir()
    _fill_proto(oracle, theirs, tmp_path / "theirs")
    listing = dtool("ls", f"s3://{bucket}")
    assert "*ds3" in listing
    assert "*ds2" not in listing
    dtool("freeze", theirs)
    assert not [k for k in list_keys(s3, bucket) if "/fragments/" in k]
    colour = json.loads(get_body(s3, bucket, f"{uuid_of(theirs)}/overlays/colour.json"))
    assert colour == {identifier(relpath): value for relpath, value in colours.items()}
    assert "All good" in oracle("verify", "-f", theirs)
    (tmp_path / "out").mkdir()
    oracle("cp", theirs, str(tmp_path / "out"))
    assert_local_copy_equal(tmp_path / "out" / "ds3", expected)


# -- 4. dataset prefixes ---------------------------------------------------------------------


def test_prefix_both_ways(
    dtool: Dtool, oracle: Dtool, s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    prefix_var = f"DTOOL_S3_DATASET_PREFIX_{bucket}"
    local = make_source_dataset(tmp_path / "local")

    # The oracle writes under u/tester/; we read without any prefix configured.
    oracle.env[prefix_var] = "u/tester/"
    theirs = copy_to_s3(oracle, local, bucket)
    del oracle.env[prefix_var]
    their_uuid = uuid_of(theirs)
    keys = list_keys(s3, bucket)
    assert get_body(s3, bucket, f"dtool-{their_uuid}") == b"u/tester/"
    for key in keys:
        assert key == f"dtool-{their_uuid}" or key.startswith(f"u/tester/{their_uuid}/"), key
    assert f"u/tester/{their_uuid}/manifest.json" in keys

    assert prefix_var not in dtool.env
    assert_dataset_listed(dtool("ls", f"s3://{bucket}"), "ds1", theirs)
    assert listed_relpaths(dtool("ls", theirs)) == set(SOURCE_FILES)
    assert "All good" in dtool("verify", "-f", theirs)

    # We write under "u/alice" (normalised to u/alice/); the oracle reads without a prefix.
    local = make_source_dataset(tmp_path / "local2", name="ds-alice")
    expected = source_contents(local)
    dtool.env[prefix_var] = "u/alice"
    ours = copy_to_s3(dtool, local, bucket)
    del dtool.env[prefix_var]
    our_uuid = uuid_of(ours)
    assert get_body(s3, bucket, f"dtool-{our_uuid}") == b"u/alice/"
    new_keys = set(list_keys(s3, bucket)) - set(keys)
    assert f"u/alice/{our_uuid}/dtool" in new_keys
    for key in new_keys:
        assert key == f"dtool-{our_uuid}" or key.startswith(f"u/alice/{our_uuid}/"), key

    listing = oracle("ls", f"s3://{bucket}")
    assert_dataset_listed(listing, "ds-alice", ours)
    assert theirs in listing
    assert "All good" in oracle("verify", "-f", ours)
    (tmp_path / "out").mkdir()
    oracle("cp", ours, str(tmp_path / "out"))
    assert_local_copy_equal(tmp_path / "out" / "ds-alice", expected)


# -- 5. the keys we write --------------------------------------------------------------------


def _version(text: str) -> tuple[int, ...]:
    match = re.match(r"(\d+)\.(\d+)\.(\d+)", text)
    assert match, text
    return tuple(int(part) for part in match.groups())


def _check_structure(s3: S3Server, bucket: str, uuid: str) -> None:
    """structure.json (2.5): every parameter, a version >= 0.14.0, our registration key."""
    structure = json.loads(get_body(s3, bucket, f"{uuid}/structure.json"))
    assert set(structure) == STRUCTURE_KEYS
    assert _version(structure["storage_broker_version"]) >= (0, 14, 0)
    assert structure["dataset_registration_key"] == f"dtool-{uuid}"
    assert {k: v for k, v in structure.items() if k in STRUCTURE_FIXED} == STRUCTURE_FIXED


def _check_admin_metadata(s3: S3Server, bucket: str, uuid: str, local: Path) -> None:
    """``dtool`` (2.4): JSON body and one x-amz-meta-* header per key, with str() values."""
    response = s3.client().get_object(Bucket=bucket, Key=f"{uuid}/dtool")
    admin: dict[str, Any] = json.loads(response["Body"].read())
    headers: dict[str, str] = response["Metadata"]
    assert set(admin) == ADMIN_KEYS | {"frozen_at"}
    assert admin["type"] == "dataset"
    assert admin["uuid"] == uuid
    assert admin["name"] == "ds1"
    assert headers == {k: str(v) for k, v in admin.items()}
    source = json.loads((local / ".dtool" / "dtool").read_text())
    for stamp in ("created_at", "frozen_at"):
        assert isinstance(admin[stamp], float)
        assert float(headers[stamp]) == admin[stamp]
        assert admin[stamp] == pytest.approx(float(source[stamp])), stamp  # kept by a copy


def _check_items(s3: S3Server, bucket: str, uuid: str, expected: dict[str, bytes]) -> None:
    """data/<sha1(relpath)> (2.6): handle = base64(UTF-8 relpath), checksum = MD5 of content."""
    client = s3.client()
    for relpath, content in expected.items():
        head = client.head_object(Bucket=bucket, Key=f"{uuid}/data/{identifier(relpath)}")
        assert head["ContentLength"] == len(content)
        assert head["Metadata"] == {
            "handle": base64.b64encode(relpath.encode("utf-8")).decode("ascii"),
            "checksum": hashlib.md5(content).hexdigest(),
        }, relpath
        if relpath == "j\u00e4tte.txt":
            assert head["Metadata"]["handle"] == "asOkdHRlLnR4dA=="
        if relpath == "big.bin":  # multipart (5 + 4 MiB): the checksum is still the MD5
            assert head["ETag"].strip('"').endswith("-2"), head["ETag"]


def _check_manifest(
    s3: S3Server, bucket: str, uuid: str, expected: dict[str, bytes], started: float
) -> None:
    """manifest.json (2.8) in dtoolcore's format, hashes from the checksums, UTC timestamps."""
    manifest = json.loads(get_body(s3, bucket, f"{uuid}/manifest.json"))
    assert manifest["hash_function"] == "md5sum_hexdigest"
    assert set(manifest["items"]) == {identifier(r) for r in expected}
    for ident, item in manifest["items"].items():
        assert set(item) == {"hash", "relpath", "size_in_bytes", "utc_timestamp"}
        content = expected[item["relpath"]]
        assert ident == identifier(item["relpath"])
        assert item["hash"] == hashlib.md5(content).hexdigest()
        assert item["size_in_bytes"] == len(content)
        assert isinstance(item["utc_timestamp"], float)
        assert started - 120 <= item["utc_timestamp"] <= time.time() + 120, item


def test_key_layout_matches_spec(dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path) -> None:
    dtool.env["DTOOL_S3_MULTIPART_THRESHOLD"] = "8MiB"
    dtool.env["DTOOL_S3_MULTIPART_PART_SIZE"] = "5MiB"
    # Last-Modified is UTC: a local time zone far from UTC must not shift utc_timestamp (8.1 #2).
    dtool.env["TZ"] = "Asia/Tokyo"
    local = make_source_dataset(tmp_path / "local", big_size=9 * MiB)
    expected = source_contents(local)
    started = time.time()
    uuid = uuid_of(copy_to_s3(dtool, local, bucket))
    keys = list_keys(s3, bucket)

    # Exactly the keys of a copied dataset (3.2); the registration key has an empty body.
    data_keys = {f"{uuid}/data/{identifier(r)}" for r in ALL_RELPATHS}
    assert set(keys) == data_keys | {
        f"dtool-{uuid}",
        f"{uuid}/README.txt",
        f"{uuid}/README.yml",
        f"{uuid}/dtool",
        f"{uuid}/manifest.json",
        f"{uuid}/overlays/kind.json",
        f"{uuid}/structure.json",
    }
    assert not [k for k in keys if "/fragments/" in k]
    assert keys[f"dtool-{uuid}"] == 0
    assert get_body(s3, bucket, f"dtool-{uuid}") == b""
    assert keys[f"{uuid}/README.txt"] > 0
    readme = get_body(s3, bucket, f"{uuid}/README.yml").decode()
    assert readme == "---\ndescription: round trip test\n"

    _check_structure(s3, bucket, uuid)
    _check_admin_metadata(s3, bucket, uuid, local)
    _check_items(s3, bucket, uuid, expected)
    _check_manifest(s3, bucket, uuid, expected, started)
    kind = json.loads(get_body(s3, bucket, f"{uuid}/overlays/kind.json"))
    assert kind == {identifier(r): f"k-{len(r)}" for r in ALL_RELPATHS}
