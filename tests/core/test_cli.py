"""The real dtool command line on S3 through our broker, on every loopback server."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import SOURCE_FILES, Dtool, make_source_dataset
from tests.support.servers import S3Server


def uri_of(dtool: Dtool, bucket: str) -> str:
    lines = dtool("ls", "-q", f"s3://{bucket}").split()
    assert len(lines) == 1, lines
    return lines[0]


def test_create_add_freeze_in_s3(dtool: Dtool, bucket: str, tmp_path: Path) -> None:
    uri = dtool.create("ds2", f"s3://{bucket}")
    (tmp_path / "a.txt").write_text("alpha\n")
    (tmp_path / "c.txt").write_text("")
    dtool("add", "item", str(tmp_path / "a.txt"), uri, "a/b.txt")
    dtool("add", "item", str(tmp_path / "c.txt"), uri, "c.txt")
    dtool("add", "metadata", uri, "a/b.txt", "colour", "red")
    dtool("add", "metadata", uri, "c.txt", "colour", "blue")
    dtool("add", "metadata", uri, "a/b.txt", "k.v", "dotted")
    dtool("add", "metadata", uri, "c.txt", "k.v", "dotted")
    assert "*ds2" in dtool("ls", f"s3://{bucket}")
    (tmp_path / "readme.yml").write_text("---\nproject: cli\n")
    dtool("readme", "write", uri, str(tmp_path / "readme.yml"))
    dtool("freeze", uri)
    assert dtool("status", uri).strip() == "frozen"
    assert "All good" in dtool("verify", "-f", uri)
    listing = dtool("ls", uri)
    assert "a/b.txt" in listing and "c.txt" in listing
    assert "project: cli" in dtool("readme", "show", uri)
    overlays = dtool("overlays", "show", uri)
    assert "colour" in overlays and "red" in overlays and "k.v" in overlays
    summary = dtool("summary", "--format", "json", uri)
    assert json.loads(summary)["number_of_items"] == 2


def test_copy_round_trip_and_s3_to_s3(
    dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    local = make_source_dataset(tmp_path / "local")
    dtool("cp", str(local), f"s3://{bucket}")
    uri = uri_of(dtool, bucket)
    assert "All good" in dtool("verify", "-f", uri)
    (tmp_path / "out").mkdir()
    dtool("cp", uri, str(tmp_path / "out"))
    copied = tmp_path / "out" / "ds1"
    for relpath, content in SOURCE_FILES.items():
        assert (copied / "data" / relpath).read_bytes() == content
    assert dtool.run("diff", "--full", str(local), str(copied)).returncode == 0
    assert dtool.run("diff", "--full", uri, str(copied)).returncode == 0

    second = f"{bucket}-2"
    s3.create_bucket(second)
    dtool.add_bucket(s3, second)
    dtool("cp", uri, f"s3://{second}")
    copy_uri = uri_of(dtool, second)
    assert copy_uri.endswith(uri.rsplit("/", 1)[1])
    assert "All good" in dtool("verify", "-f", copy_uri)
    assert dtool.run("diff", "--full", uri, copy_uri).returncode == 0


def test_tags_annotations_readme_updates(dtool: Dtool, bucket: str, tmp_path: Path) -> None:
    local = make_source_dataset(tmp_path / "local")
    dtool("cp", str(local), f"s3://{bucket}")
    uri = uri_of(dtool, bucket)
    identifiers = dtool("identifiers", uri).split()
    assert "3857b672471862eab426eba0622e44bd2cedbd5d" in identifiers
    props = json.loads(dtool("item", "properties", uri, "3857b672471862eab426eba0622e44bd2cedbd5d"))
    assert props["relpath"] == "hello.txt" and props["size_in_bytes"] == 6
    fetched = dtool("item", "fetch", uri, "3857b672471862eab426eba0622e44bd2cedbd5d").strip()
    assert fetched.endswith(".txt") and Path(fetched).read_bytes() == b"hello\n"
    dtool("tag", "set", uri, "good")
    dtool("tag", "set", uri, "checked")
    dtool("tag", "delete", uri, "checked")
    assert dtool("tag", "ls", uri).split() == ["good"]
    dtool("annotation", "set", uri, "project", "roundtrip")
    dtool("annotation", "set", uri, "count", "3", "--type", "int")
    assert "project\troundtrip" in dtool("annotation", "ls", uri)
    (tmp_path / "new.yml").write_text("---\ndescription: updated\n")
    dtool("readme", "write", uri, str(tmp_path / "new.yml"))
    assert "updated" in dtool("readme", "show", uri)


def test_publish_presigned_then_read_over_http(dtool: Dtool, bucket: str, tmp_path: Path) -> None:
    local = make_source_dataset(tmp_path / "local")
    dtool("cp", str(local), f"s3://{bucket}")
    uri = uri_of(dtool, bucket)
    dtool.env["DTOOL_S3_PUBLISH_EXPIRY"] = "600"
    url = dtool("publish", "-q", uri).strip()
    assert "X-Amz-Signature" in url
    assert "hello.txt" in dtool("ls", url)
    (tmp_path / "http").mkdir()
    dtool("cp", url, str(tmp_path / "http"))
    for relpath, content in SOURCE_FILES.items():
        assert (tmp_path / "http" / "ds1" / "data" / relpath).read_bytes() == content


def test_publish_public_acl(dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path) -> None:
    local = make_source_dataset(tmp_path / "local")
    dtool("cp", str(local), f"s3://{bucket}")
    uri = uri_of(dtool, bucket)
    result = dtool.run("publish", "-q", uri, check=False)
    if not s3.supports_public_acl:
        assert result.returncode != 0
        assert "DTOOL_S3_PUBLISH_EXPIRY" in result.stderr
        assert "Traceback" not in result.stderr
        return
    url = result.stdout.strip()
    with urllib.request.urlopen(url + "/http_manifest.json") as response:
        assert "item_urls" in json.loads(response.read())
    assert "hello.txt" in dtool("ls", url)


def test_copy_resume_finishes_interrupted_copy(
    dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    local = make_source_dataset(tmp_path / "local")
    dtool("cp", str(local), f"s3://{bucket}")
    uri = uri_of(dtool, bucket)
    uuid = uri.rsplit("/", 1)[1]
    client = s3.client()
    # Simulate an interruption: back to a proto dataset, two items and the manifest gone.
    admin = json.loads(client.get_object(Bucket=bucket, Key=f"{uuid}/dtool")["Body"].read())
    admin["type"] = "protodataset"
    del admin["frozen_at"]
    client.put_object(
        Bucket=bucket,
        Key=f"{uuid}/dtool",
        Body=json.dumps(admin),
        Metadata={k: str(v) for k, v in admin.items()},
    )
    manifest = json.loads(
        client.get_object(Bucket=bucket, Key=f"{uuid}/manifest.json")["Body"].read()
    )
    for ident in list(manifest["items"])[:2]:
        client.delete_object(Bucket=bucket, Key=f"{uuid}/data/{ident}")
    client.delete_object(Bucket=bucket, Key=f"{uuid}/manifest.json")
    assert dtool("status", uri).strip() != "frozen"
    result = dtool.run("cp", str(local), f"s3://{bucket}", check=False)
    assert result.returncode != 0
    assert "already exists" in result.stderr
    assert "Traceback" not in result.stderr
    dtool("cp", "--resume", str(local), f"s3://{bucket}")
    assert dtool("status", uri).strip() == "frozen"
    assert "All good" in dtool("verify", "-f", uri)


@pytest.mark.parametrize("big_size", [9 * 1024 * 1024])
def test_multipart_item(dtool: Dtool, bucket: str, tmp_path: Path, big_size: int) -> None:
    dtool.env["DTOOL_S3_MULTIPART_THRESHOLD"] = "6MiB"
    dtool.env["DTOOL_S3_MULTIPART_PART_SIZE"] = "5MiB"
    local = make_source_dataset(tmp_path / "local", big_size=big_size)
    dtool("cp", str(local), f"s3://{bucket}")
    uri = uri_of(dtool, bucket)
    assert "All good" in dtool("verify", "-f", uri)
    (tmp_path / "out").mkdir()
    dtool("cp", uri, str(tmp_path / "out"))
    big = (local / "data" / "big.bin").read_bytes()
    assert (tmp_path / "out" / "ds1" / "data" / "big.bin").read_bytes() == big
