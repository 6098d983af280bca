"""``dtool s3 rm`` through the real dtool CLI on moto: whole datasets go, half-deleted ones are
finished, locked ones, URIs that name no dataset and a missing confirmation are one line each."""

from __future__ import annotations

import os
import pty
import subprocess
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dtoolcore
import pytest

from dtool_s3_core import copy_dataset, create_dataset, list_datasets
from dtool_s3_core._s3.multipart import unfinished_uploads
from dtool_s3_core.errors import TransferFailed
from tests.conftest import SOURCE_FILES, Dtool, make_source_dataset, use_server
from tests.support.servers import S3Server


@pytest.fixture
def s3(s3_servers: Callable[[str], S3Server]) -> S3Server:
    """moto: deletion does not depend on the server, and moto has Object Lock."""
    return s3_servers("moto")


def keys(s3: S3Server, bucket: str, prefix: str = "") -> list[str]:
    listing = s3.client().list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(entry["Key"] for entry in listing.get("Contents", []))


def uploads(s3: S3Server, bucket: str) -> list[str]:
    return [u["Key"] for u in s3.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def uuid_of(uri: str) -> str:
    return uri.rsplit("/", 1)[1]


def frozen_dataset(s3: S3Server, bucket: str, tmp_path: Path, name: str = "ds1") -> str:
    """A frozen dataset with overlays, a tag, an annotation and an old README beside it.

    Made in this process: only the command under test pays for starting dtool.
    """
    local = make_source_dataset(tmp_path / name, name=name)
    with use_server(s3, bucket, tmp_path):
        uri = copy_dataset(str(local), f"s3://{bucket}")
        dataset = dtoolcore.DataSet.from_uri(uri)
        dataset.put_tag("raw")
        dataset.put_annotation("project", "x")
        dataset.put_readme("---\ndescription: changed\n")  # keeps README.yml-<time>
    return uri


def listed(s3: S3Server, bucket: str, tmp_path: Path) -> list[str]:
    with use_server(s3, bucket, tmp_path):
        return [info.uri for info in list_datasets(f"s3://{bucket}")]


def test_rm_deletes_a_frozen_dataset_and_nothing_else(
    dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    uri = frozen_dataset(s3, bucket, tmp_path)
    kept = frozen_dataset(s3, bucket, tmp_path, "other")
    root = f"{uuid_of(uri)}/"
    before = keys(s3, bucket, root)
    assert {"tags/raw", "annotations/project.json", "overlays/kind.json"} <= {
        key[len(root) :] for key in before
    }
    assert any(key.startswith(f"{root}README.yml-") for key in before)

    out = dtool("s3", "rm", "--yes", uri)
    size = sum(len(content) for content in SOURCE_FILES.values())
    assert out == (
        f"Deleted the frozen dataset 'ds1' at {uri}: {len(before) + 1} objects, "
        f"{len(SOURCE_FILES)} items, {size} B\n"
    )
    assert keys(s3, bucket, root) == []
    assert f"dtool-{uuid_of(uri)}" not in keys(s3, bucket)
    shown = dtool("ls", f"s3://{bucket}")
    assert uri not in shown and kept in shown


def test_rm_deletes_a_proto_dataset_and_aborts_its_uploads(
    dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    item = tmp_path / "item.txt"
    item.write_bytes(b"12345")
    with use_server(s3, bucket, tmp_path):
        uri = create_dataset("proto", f"s3://{bucket}", files={"item.txt": item}, freeze=False)
        dtoolcore.ProtoDataSet.from_uri(uri).add_item_metadata("item.txt", "kind", "text")
    root = f"{uuid_of(uri)}/"
    s3.client().create_multipart_upload(Bucket=bucket, Key=f"{root}data/unfinished")
    assert uploads(s3, bucket) == [f"{root}data/unfinished"]

    out = dtool("s3", "rm", "-y", uri)
    assert out.startswith(f"Deleted the proto dataset 'proto' at {uri}: ")
    assert out.endswith(" objects, 1 item, 5 B; 1 unfinished upload aborted\n")
    assert keys(s3, bucket) == [] and uploads(s3, bucket) == []
    assert listed(s3, bucket, tmp_path) == []


def run_in_pty(dtool: Dtool, answer: str, *args: str) -> tuple[int, str]:
    """Run dtool on a pseudo terminal, typing ``answer``; return its status and what it wrote."""
    leader, follower = pty.openpty()
    env = dtool.environment()
    process = subprocess.Popen(
        [str(dtool.bin_dir / "dtool"), *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
    )
    os.close(follower)
    # The terminal keeps the line until the prompt reads it.
    os.write(leader, answer.encode() + b"\n")
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the terminal closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return process.wait(timeout=300), b"".join(chunks).decode(errors="replace")


def test_rm_asks_first_and_no_keeps_the_dataset(
    dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    uri = frozen_dataset(s3, bucket, tmp_path)
    before = keys(s3, bucket)
    status, output = run_in_pty(dtool, "n", "s3", "rm", uri)
    size = sum(len(content) for content in SOURCE_FILES.values())
    assert status == 1
    typed, shown = output.replace("\r\n", "\n").split("\n", 1)  # the terminal echoes "n"
    assert typed == "n"
    assert shown.startswith(
        "This deletes the frozen dataset 'ds1':\n"
        f"  URI:     {uri}\n"
        f"  UUID:    {uuid_of(uri)}\n"
        f"  items:   {len(SOURCE_FILES)} ({size} B)\n"
        f"  objects: {len(before)}\n"
        "Delete it? [y/N]: "
    )
    assert output.rstrip().endswith("Nothing deleted.")
    assert keys(s3, bucket) == before

    status, output = run_in_pty(dtool, "y", "s3", "rm", uri)
    assert status == 0 and f"Deleted the frozen dataset 'ds1' at {uri}" in output
    assert keys(s3, bucket) == []


def test_rm_without_a_terminal_needs_yes(
    dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    with use_server(s3, bucket, tmp_path):
        uri = create_dataset("proto", f"s3://{bucket}", freeze=False)
    before = keys(s3, bucket)
    line = one_line_error(dtool.run("s3", "rm", uri, check=False, stdin=""))
    assert line == (
        f"Error: not deleting {uri} without confirmation, and there is no terminal to ask on: "
        "add --yes to delete it"
    )
    assert keys(s3, bucket) == before


def test_rm_deletes_a_dataset_of_dtool_s3_0_14_1_wholly(
    dtool: Dtool, oracle: Dtool, s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    # dtool-s3 fuses a prefix without '/' with the UUID: its keys are u/nos<uuid>/...
    oracle.env[f"DTOOL_S3_DATASET_PREFIX_{bucket}"] = "u/nos"
    local = make_source_dataset(tmp_path / "local")
    (uri,) = [w for w in oracle("cp", str(local), f"s3://{bucket}").split() if "s3://" in w]
    assert keys(s3, bucket, f"u/nos{uuid_of(uri)}/")

    out = dtool("s3", "rm", "--yes", uri)
    assert out.startswith(f"Deleted the frozen dataset 'ds1' at {uri}: ")
    assert keys(s3, bucket) == []


@pytest.mark.parametrize("left", ["items", "registration"])
def test_rm_finishes_a_half_deleted_dataset(
    dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path, left: str
) -> None:
    uri = frozen_dataset(s3, bucket, tmp_path)
    root = f"{uuid_of(uri)}/"
    # What an interrupted rm leaves: the admin metadata went first, the registration last.
    gone = [f"{root}dtool"] + ([] if left == "items" else keys(s3, bucket, root))
    s3.client().delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in gone]})
    assert listed(s3, bucket, tmp_path) == []

    out = dtool("s3", "rm", "--yes", uri)
    assert out.startswith(f"Deleted what is left of a half-deleted dataset at {uri}: ")
    if left == "registration":
        assert out.endswith(": 1 object, 0 items, 0 B\n")
    assert keys(s3, bucket) == []
    line = one_line_error(dtool.run("s3", "rm", "--yes", uri, check=False))
    assert line == (
        f"Error: no dataset at {uri}: check the UUID ('dtool ls s3://{bucket}' lists the datasets)"
    )


def test_rm_deletes_a_dataset_whose_admin_metadata_are_damaged(
    dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    # The hint of a damaged dataset names 'dtool s3 rm': it must work without the admin metadata.
    uri = frozen_dataset(s3, bucket, tmp_path)
    s3.client().put_object(Bucket=bucket, Key=f"{uuid_of(uri)}/dtool", Body=b"{broken")
    out = dtool("s3", "rm", "--yes", uri)
    assert out.startswith(f"Deleted the damaged dataset at {uri}: ")
    assert keys(s3, bucket) == []


@pytest.fixture
def locked_bucket(s3: S3Server) -> str:
    name = f"lock-{uuid.uuid4().hex[:12]}"
    s3.client().create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    return name


def test_rm_refuses_a_locked_dataset(
    dtool: Dtool, s3: S3Server, locked_bucket: str, tmp_path: Path
) -> None:
    dtool.add_bucket(s3, locked_bucket)
    uri = frozen_dataset(s3, locked_bucket, tmp_path)
    manifest = f"{uuid_of(uri)}/manifest.json"
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    client = s3.client()
    client.put_object_retention(
        Bucket=locked_bucket,
        Key=manifest,
        Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until},
    )
    client.put_object_legal_hold(
        Bucket=locked_bucket, Key=f"{uuid_of(uri)}/dtool", LegalHold={"Status": "ON"}
    )
    before = keys(s3, locked_bucket)

    line = one_line_error(dtool.run("s3", "rm", "--yes", uri, check=False))
    assert line == (
        f"Error: {uri} is locked: s3://{locked_bucket}/{uuid_of(uri)}/dtool is under a legal "
        "hold (and 1 more of its objects); a locked dataset cannot be deleted until every "
        "retention has ended and every legal hold is removed"
    )
    client.put_object_legal_hold(
        Bucket=locked_bucket, Key=f"{uuid_of(uri)}/dtool", LegalHold={"Status": "OFF"}
    )
    line = one_line_error(dtool.run("s3", "rm", "--yes", uri, check=False))
    assert line == (
        f"Error: {uri} is locked: s3://{locked_bucket}/{manifest} is under GOVERNANCE retention "
        f"until {until:%Y-%m-%d %H:%M} UTC; a locked dataset cannot be deleted until every "
        "retention has ended and every legal hold is removed"
    )
    assert keys(s3, locked_bucket) == before and listed(s3, locked_bucket, tmp_path) == [uri]


def test_rm_in_a_lock_enabled_bucket_deletes_an_unlocked_dataset(
    dtool: Dtool, s3: S3Server, locked_bucket: str, tmp_path: Path
) -> None:
    dtool.add_bucket(s3, locked_bucket)
    uri = frozen_dataset(s3, locked_bucket, tmp_path)
    assert dtool("s3", "rm", "--yes", uri).startswith("Deleted the frozen dataset")
    assert keys(s3, locked_bucket) == []
    assert listed(s3, locked_bucket, tmp_path) == []


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            "",
            "{base} is a bucket, not a dataset: name one dataset as {base}/<uuid> "
            "('dtool ls {base}' lists them)",
        ),
        (
            "/ds1",
            "{base}/ds1 is not a dataset URI (a dataset's UUID belongs after the bucket): "
            "'dtool ls {base}' lists the datasets with their URIs",
        ),
        (
            "/{uuid}/data",
            "{base}/{uuid}/data is not a dataset URI (a dataset's UUID belongs "
            "after the bucket): 'dtool ls {base}' lists the datasets with their URIs",
        ),
    ],
)
def test_rm_refuses_a_uri_that_is_not_one_dataset(
    dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path, path: str, expected: str
) -> None:
    with use_server(s3, bucket, tmp_path):
        uri = create_dataset("ds1", f"s3://{bucket}", freeze=False)
    before = keys(s3, bucket)
    base = f"s3://{bucket}"
    given = base + path.format(uuid=uuid_of(uri))
    line = one_line_error(dtool.run("s3", "rm", "--yes", given, check=False))
    assert line == "Error: " + expected.format(base=base, uuid=uuid_of(uri))
    assert keys(s3, bucket) == before


class EndlessUploads:
    """A server that answers every listing of uploads with the same truncated page."""

    bucket = "b"

    def call(self, operation: str, **params: object) -> dict[str, object]:
        assert operation == "list_multipart_uploads"
        return {
            "Uploads": [{"Key": "u/data/x", "UploadId": "1"}],
            "IsTruncated": True,
            "NextKeyMarker": "u/data/x",
            "NextUploadIdMarker": "1",
        }


def test_an_upload_listing_that_does_not_end_is_one_line() -> None:
    with pytest.raises(TransferFailed) as info:
        unfinished_uploads(EndlessUploads(), "u/")  # type: ignore[arg-type]
    assert str(info.value) == (
        "the server did not end its listing of the uploads under s3://b/u/: the server is at "
        "fault; report it to its operator"
    )


class ForeignUploads:
    """A server that answers a listing of the uploads under a prefix with one outside it."""

    bucket = "b"

    def call(self, operation: str, **params: object) -> dict[str, object]:
        assert operation == "list_multipart_uploads"
        return {"Uploads": [{"Key": "other/data/x", "UploadId": "1"}], "IsTruncated": False}


def test_an_upload_outside_the_dataset_is_not_aborted() -> None:
    with pytest.raises(TransferFailed) as info:
        unfinished_uploads(ForeignUploads(), "u/")  # type: ignore[arg-type]
    assert str(info.value) == (
        "the server answered the listing of the uploads under s3://b/u/ with the key "
        "'other/data/x', which is outside it: the server is at fault; report it to its operator"
    )
