"""The bad-input matrix of docs/errors.md: one clear line, a non-zero exit, no traceback.

Every case also checks that nothing was written that later looks complete, by listing the bucket
with the server's own client. The server does not matter to these cases, so they run against moto
only (``s3`` below); authentication and bucket policies need SeaweedFS, which enforces them.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import dtoolcore
import pytest

from dtool_s3_core import (
    copy_dataset,
    create_dataset,
    list_datasets,
    resolve_config,
    verify_dataset,
)
from dtool_s3_core._dataset.cache import dataset_directory
from dtool_s3_core._s3.transfer import _local_writes
from dtool_s3_core.errors import (
    ConfigurationError,
    DatasetStateError,
    LocalFileError,
    ObjectNotFound,
)
from tests.conftest import SERVERS, Dtool, make_source_dataset, use_server
from tests.support.servers import S3Server, free_port

MISSING_UUID = "00000000-0000-4000-8000-000000000000"
ZERO_ID = "0" * 40


@pytest.fixture
def s3(request: pytest.FixtureRequest, s3_servers: Callable[[str], S3Server]) -> S3Server:
    """moto, for ``bucket`` and ``dtool`` as well; each server in turn under ``every_server``."""
    return s3_servers(getattr(request, "param", "moto"))


#: For the cases that need a server that checks signatures and enforces bucket policies, which
#: moto does not: they run on each server of DTOOL_S3_TEST_SERVERS, as with conftest's ``s3``.
every_server = pytest.mark.parametrize("s3", SERVERS, indirect=True)


def only(s3: S3Server, kind: str) -> None:
    """Skip unless the server is ``kind``."""
    if s3.name != kind:
        pytest.skip(f"needs {kind}, which enforces authentication and bucket policies")


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """Return the one error line of a failed command (and check there is no traceback)."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def dtool_refusal(result: subprocess.CompletedProcess[str]) -> str:
    """Return stderr of a command that the dtool CLI itself refused (click usage error)."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return " ".join(result.stderr.split())


def objects(s3: S3Server, bucket: str) -> dict[str, str]:
    """Every key of the bucket with its ETag."""
    found = {}
    for page in s3.client().get_paginator("list_objects_v2").paginate(Bucket=bucket):
        found.update({entry["Key"]: entry["ETag"] for entry in page.get("Contents", [])})
    return found


def frozen_datasets(s3: S3Server, bucket: str) -> list[str]:
    """Keys of admin metadata objects that say ``dataset`` (frozen)."""
    client = s3.client()
    return [
        key
        for key in objects(s3, bucket)
        if key.endswith("/dtool")
        and b'"type": "dataset"' in client.get_object(Bucket=bucket, Key=key)["Body"].read()
    ]


@contextmanager
def api(s3: S3Server, bucket: str, tmp_path: Path) -> Iterator[None]:
    with use_server(s3, bucket, tmp_path):
        yield


@pytest.fixture
def proto_uri(s3: S3Server, bucket: str, tmp_path: Path) -> str:
    (tmp_path / "a.txt").write_text("alpha\n")
    with api(s3, bucket, tmp_path):
        return create_dataset(
            "proto", f"s3://{bucket}", files={"a.txt": tmp_path / "a.txt"}, freeze=False
        )


@pytest.fixture
def frozen_uri(s3: S3Server, bucket: str, tmp_path: Path) -> str:
    (tmp_path / "a.txt").write_text("alpha\n")
    with api(s3, bucket, tmp_path):
        return create_dataset("frozen", f"s3://{bucket}", files={"a.txt": tmp_path / "a.txt"})


def key_of(uri: str, name: str) -> str:
    return f"{uri.rsplit('/', 1)[1]}/{name}"


# -- malformed URIs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        (
            "s3://x",
            "invalid bucket name 'x' in 's3://x': use 3-255 letters, digits, '.', '-' or '_'",
        ),
        (
            "s3:/{b}",
            "invalid bucket name '' in 's3:/{b}': use 3-255 letters, digits, '.', '-' or '_'",
        ),
        (
            "s3://bad_bucket!",
            "invalid bucket name 'bad_bucket!' in 's3://bad_bucket!': use 3-255 letters, digits, "
            "'.', '-' or '_'",
        ),
        (
            "s3://{b}/?versionId=1",
            "unexpected query or fragment in 's3://{b}/?versionId=1': use s3://<bucket> or "
            "s3://<bucket>/<uuid>",
        ),
    ],
)
def test_malformed_uri(dtool: Dtool, s3: S3Server, bucket: str, uri: str, message: str) -> None:
    before = objects(s3, bucket)
    result = dtool.run("ls", uri.format(b=bucket), check=False)
    assert error_line(result) == "Error: " + message.format(b=bucket)
    assert objects(s3, bucket) == before


def test_uri_that_names_no_dataset(dtool: Dtool, s3: S3Server, bucket: str) -> None:
    result = dtool.run("summary", f"s3://{bucket}/not-a-uuid", check=False)
    assert f"URI is not a dataset: s3://{bucket}/not-a-uuid" in dtool_refusal(result)
    assert objects(s3, bucket) == {}


# -- buckets, credentials, endpoints -------------------------------------------------------------


def test_missing_bucket(dtool: Dtool, s3: S3Server) -> None:
    dtool.add_bucket(s3, "no-such-bucket")
    result = dtool.run("ls", "s3://no-such-bucket", check=False)
    assert error_line(result) == (
        f"Error: bucket 'no-such-bucket' does not exist at {s3.endpoint_url}: create it or "
        "check the bucket name and DTOOL_S3_ENDPOINT_no-such-bucket in the environment"
    )
    assert "no-such-bucket" not in [b["Name"] for b in s3.client().list_buckets()["Buckets"]]


@every_server
def test_no_permission(dtool: Dtool, s3: S3Server, bucket: str) -> None:
    only(s3, "seaweedfs")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": ["s3:PutObject"],
                "Resource": [f"arn:aws:s3:::{bucket}/*"],
            }
        ],
    }
    s3.client().put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    result = dtool.run("create", "ds", f"s3://{bucket}", check=False)
    line = error_line(result)
    assert line.startswith(f"Error: access denied to s3://{bucket}/dtool-"), line
    assert line.endswith(
        f"(AccessDenied): check DTOOL_S3_ACCESS_KEY_ID_{bucket} and "
        f"DTOOL_S3_SECRET_ACCESS_KEY_{bucket} in the environment (or your AWS profile) and the "
        "bucket policy"
    )
    assert objects(s3, bucket) == {}


@pytest.mark.parametrize(
    ("variable", "code"),
    [("SECRET_ACCESS_KEY", "SignatureDoesNotMatch"), ("ACCESS_KEY_ID", "InvalidAccessKeyId")],
)
@every_server
def test_wrong_credentials(
    dtool: Dtool, s3: S3Server, bucket: str, variable: str, code: str
) -> None:
    only(s3, "seaweedfs")
    dtool.env[f"DTOOL_S3_{variable}_{bucket}"] = "wrong-credential-value"
    result = dtool.run("create", "ds", f"s3://{bucket}", check=False)
    line = error_line(result)
    assert f"Error: access denied to s3://{bucket}" in line
    assert f"({code}): check DTOOL_S3_ACCESS_KEY_ID_{bucket} and" in line
    assert "wrong-credential-value" not in result.stderr + result.stdout
    assert objects(s3, bucket) == {}


def test_partial_credentials(dtool: Dtool, s3: S3Server, bucket: str) -> None:
    del dtool.env[f"DTOOL_S3_SECRET_ACCESS_KEY_{bucket}"]
    result = dtool.run("create", "ds", f"s3://{bucket}", check=False)
    assert error_line(result) == (
        f"Error: partial credentials for bucket '{bucket}': set "
        f"DTOOL_S3_SECRET_ACCESS_KEY_{bucket} as well, or remove the other key "
        f"(DTOOL_S3_ACCESS_KEY_ID_{bucket} in the environment) to use the AWS credential chain"
    )
    assert objects(s3, bucket) == {}


def test_no_credentials(dtool: Dtool, s3: S3Server, bucket: str) -> None:
    del dtool.env[f"DTOOL_S3_SECRET_ACCESS_KEY_{bucket}"]
    del dtool.env[f"DTOOL_S3_ACCESS_KEY_ID_{bucket}"]
    result = dtool.run("create", "ds", f"s3://{bucket}", check=False)
    assert error_line(result) == (
        f"Error: no credentials for bucket '{bucket}': set DTOOL_S3_ACCESS_KEY_ID_{bucket} and "
        f"DTOOL_S3_SECRET_ACCESS_KEY_{bucket}, or configure an AWS profile"
    )
    assert objects(s3, bucket) == {}


def test_unreachable_endpoint(dtool: Dtool, s3: S3Server, bucket: str) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    dtool.env[f"DTOOL_S3_ENDPOINT_{bucket}"] = endpoint
    dtool.env["DTOOL_S3_MAX_ATTEMPTS"] = "2"
    result = dtool.run("ls", f"s3://{bucket}", check=False)
    assert error_line(result) == (
        f"Error: cannot reach {endpoint} for bucket '{bucket}': check "
        f"DTOOL_S3_ENDPOINT_{bucket} in the environment and your network"
    )


def test_tls_failure(dtool: Dtool, s3: S3Server, bucket: str) -> None:
    endpoint = s3.endpoint_url.replace("http://", "https://")
    dtool.env[f"DTOOL_S3_ENDPOINT_{bucket}"] = endpoint
    # botocore retries TLS errors like any connection error; one attempt shows the same line.
    dtool.env["DTOOL_S3_MAX_ATTEMPTS"] = "1"
    result = dtool.run("create", "ds", f"s3://{bucket}", check=False)
    assert error_line(result) == (
        f"Error: TLS handshake with {endpoint} failed for bucket '{bucket}': check the "
        f"certificate or use the right scheme (http/https) in DTOOL_S3_ENDPOINT_{bucket} in "
        "the environment"
    )
    assert objects(s3, bucket) == {}


# -- things that are not there -------------------------------------------------------------------


def test_dataset_not_found(dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path) -> None:
    uri = f"s3://{bucket}/{MISSING_UUID}"
    result = dtool.run("summary", uri, check=False)
    assert f"URI is not a dataset: {uri}" in dtool_refusal(result)
    with api(s3, bucket, tmp_path), pytest.raises(DatasetStateError) as info:
        verify_dataset(uri)
    assert str(info.value) == (
        f"no frozen dataset at {uri}: check the URI ('dtool ls <base URI>' lists them), "
        "or freeze the proto dataset first"
    )
    assert objects(s3, bucket) == {}


def test_item_not_found(dtool: Dtool, s3: S3Server, bucket: str, frozen_uri: str) -> None:
    before = objects(s3, bucket)
    result = dtool.run("item", "fetch", frozen_uri, ZERO_ID, check=False)
    assert error_line(result) == (
        f"Error: item not found: s3://{bucket}/{key_of(frozen_uri, 'data/' + ZERO_ID)}"
    )
    assert objects(s3, bucket) == before


# -- relpaths and names --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relpath", "message"),
    [
        (
            "../escape.txt",
            "item relpath '../escape.txt' has an empty, '.' or '..' component: give a "
            "normalised path",
        ),
        ("/etc/passwd", "item relpath '/etc/passwd' is absolute: give a relative path"),
        (
            "two\nlines.txt",
            "item relpath 'two\\nlines.txt' contains control characters (e.g. a newline): rename "
            "the item",
        ),
        (
            "bell\x07.txt",
            "item relpath 'bell\\x07.txt' contains control characters (e.g. a newline): rename "
            "the item",
        ),
        (
            "d/" + "x" * 1100,
            "item relpath is 1102 bytes long: the limit is 1024 (S3 metadata size); shorten it",
        ),
        (
            "\u00e4" * 600,
            "item relpath is 1200 bytes long: the limit is 1024 (S3 metadata size); shorten it",
        ),
    ],
    ids=["dotdot", "absolute", "newline", "control", "long", "long-utf8"],
)
def test_bad_relpath(
    dtool: Dtool,
    s3: S3Server,
    bucket: str,
    proto_uri: str,
    tmp_path: Path,
    relpath: str,
    message: str,
) -> None:
    before = objects(s3, bucket)
    result = dtool.run("add", "item", str(tmp_path / "a.txt"), proto_uri, relpath, check=False)
    assert error_line(result) == "Error: " + message
    assert objects(s3, bucket) == before


def test_dataset_name_too_long(dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path) -> None:
    name = "n" * 81
    result = dtool.run("create", name, f"s3://{bucket}", check=False)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert f"Invalid dataset name '{name}'" in result.stdout
    assert "Name must be 80 characters or less" in result.stdout
    with api(s3, bucket, tmp_path), pytest.raises(ConfigurationError) as info:
        create_dataset(name, f"s3://{bucket}")
    assert str(info.value) == (
        f"invalid dataset name '{name}': use letters, digits, '-', '_' and '.' (max 80)"
    )
    assert objects(s3, bucket) == {}


# -- frozen and existing datasets ----------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [("add", "item", "{file}", "{uri}", "b.txt"), ("add", "metadata", "{uri}", "a.txt", "k", "v")],
    ids=["add-item", "add-metadata"],
)
def test_writing_to_a_frozen_dataset(
    dtool: Dtool,
    s3: S3Server,
    bucket: str,
    frozen_uri: str,
    tmp_path: Path,
    command: tuple[str, ...],
) -> None:
    before = objects(s3, bucket)
    args = [a.format(uri=frozen_uri, file=tmp_path / "a.txt") for a in command]
    refusal = dtool_refusal(dtool.run(*args, check=False))
    assert f"URI is not a proto dataset: {frozen_uri} It looks like a frozen dataset" in refusal
    assert objects(s3, bucket) == before


def test_freezing_twice(dtool: Dtool, s3: S3Server, bucket: str, frozen_uri: str) -> None:
    before = objects(s3, bucket)
    refusal = dtool_refusal(dtool.run("freeze", frozen_uri, check=False))
    assert f"URI is not a proto dataset: {frozen_uri} It looks like a frozen dataset" in refusal
    assert objects(s3, bucket) == before


def test_readme_of_a_frozen_dataset_is_updated_with_a_backup(
    dtool: Dtool, s3: S3Server, bucket: str, frozen_uri: str, tmp_path: Path
) -> None:
    """Not an error: dtool lets a frozen dataset's README change and keeps the old one."""
    before = objects(s3, bucket)
    (tmp_path / "readme.yml").write_text("---\nnew: readme\n")
    dtool("readme", "write", frozen_uri, str(tmp_path / "readme.yml"))
    after = objects(s3, bucket)
    changed = {key for key in after if before.get(key) != after[key]}
    readme = key_of(frozen_uri, "README.yml")
    assert readme in changed and len(changed) == 2, changed
    assert next(iter(changed - {readme})).startswith(readme + "-")
    assert dtool("status", frozen_uri).strip() == "frozen"


def test_copying_onto_an_existing_dataset(
    dtool: Dtool, s3: S3Server, bucket: str, frozen_uri: str, tmp_path: Path
) -> None:
    before = objects(s3, bucket)
    refusal = dtool_refusal(dtool.run("cp", frozen_uri, f"s3://{bucket}", check=False))
    assert f"Dataset already exists: {frozen_uri}" in refusal
    with api(s3, bucket, tmp_path), pytest.raises(DatasetStateError) as info:
        copy_dataset(frozen_uri, f"s3://{bucket}")
    assert str(info.value) == (
        f"a dataset already exists at {frozen_uri} (a frozen copy): copy with resume=True "
        f"to finish or reuse it, or delete it first with 'dtool s3 rm {frozen_uri}'"
    )
    assert objects(s3, bucket) == before


def test_partial_item_metadata_refuses_freeze(
    dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text(name)
    with api(s3, bucket, tmp_path):
        files = {name: tmp_path / name for name in ("a.txt", "b.txt")}
        uri = create_dataset("ds", f"s3://{bucket}", files=files, freeze=False)
    dtool("add", "metadata", uri, "a.txt", "colour", "red")
    result = dtool.run("freeze", uri, check=False)
    assert error_line(result) == (
        f"Error: item metadata 'colour' is set on 1 of 2 items of {uri}: add it to every item "
        "before freezing"
    )
    assert frozen_datasets(s3, bucket) == []


def test_publishing_a_proto_dataset(
    dtool: Dtool, s3: S3Server, bucket: str, proto_uri: str
) -> None:
    before = objects(s3, bucket)
    refusal = dtool_refusal(dtool.run("publish", proto_uri, check=False))
    assert f"URI is not a frozen dataset: {proto_uri} It looks like a proto dataset" in refusal
    assert objects(s3, bucket) == before


# -- local files ---------------------------------------------------------------------------------


# Runs dtool with a 64 KiB file size limit. SIGXFSZ would kill it; ignored (which survives the
# exec), writes past the limit fail with EFBIG. An exec wrapper rather than preexec_fn, because
# the test process has threads and forking it is unsafe.
_WITH_FILE_SIZE_LIMIT = (
    "import os, resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
    "resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536)); os.execv(sys.argv[1], sys.argv[1:])"
)


def test_full_local_disk_while_downloading(
    dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    (tmp_path / "big.bin").write_bytes(os.urandom(256 * 1024))
    with api(s3, bucket, tmp_path):
        uri = create_dataset("big", f"s3://{bucket}", files={"big.bin": tmp_path / "big.bin"})
    before = objects(s3, bucket)
    (tmp_path / "out").mkdir()
    env = dtool.environment()
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _WITH_FILE_SIZE_LIMIT,
            str(dtool.bin_dir / "dtool"),
            "cp",
            uri,
            str(tmp_path / "out"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    uuid = uri.rsplit("/", 1)[1]
    ident = dtoolcore.utils.generate_identifier("big.bin")
    with use_server(s3, bucket, tmp_path):
        cached = dataset_directory(resolve_config(bucket), uuid)
    assert error_line(result) == (
        f"Error: cannot write to {cached} while downloading "
        f"s3://{bucket}/{uuid}/data/{ident}: the file size limit is exceeded; raise the limit "
        "(ulimit -f), or set DTOOL_CACHE_DIRECTORY to a directory on another disk"
    )
    assert [p for p in (tmp_path / "cache").rglob("*") if p.is_file()] == []
    copied = tmp_path / "out" / "big"
    assert not (copied / ".dtool" / "manifest.json").exists()
    assert json.loads((copied / ".dtool" / "dtool").read_text())["type"] == "protodataset"
    assert objects(s3, bucket) == before


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (errno.ENOSPC, "the disk is full; free some space there"),
        (errno.EDQUOT, "the disk quota is exceeded; free some space there"),
        (errno.EACCES, "permission denied; make it writable"),
    ],
    ids=["ENOSPC", "EDQUOT", "EACCES"],
)
def test_disk_errors_become_one_line(tmp_path: Path, code: int, message: str) -> None:
    """The errors a test cannot cause without root take the same path as EFBIG above."""
    with pytest.raises(LocalFileError) as info, _local_writes(tmp_path, "s3://b/k"):
        raise OSError(code, os.strerror(code))
    assert str(info.value) == (
        f"cannot write to {tmp_path} while downloading s3://b/k: {message}, or set "
        "DTOOL_CACHE_DIRECTORY to a directory on another disk"
    )


def test_missing_local_file(
    dtool: Dtool, s3: S3Server, bucket: str, proto_uri: str, tmp_path: Path
) -> None:
    before = objects(s3, bucket)
    missing = tmp_path / "nope.txt"
    refusal = dtool_refusal(dtool.run("add", "item", str(missing), proto_uri, check=False))
    assert f"Invalid value for 'INPUT_FILE': Path '{missing}' does not exist." in refusal
    assert objects(s3, bucket) == before
    with api(s3, bucket, tmp_path), pytest.raises(ObjectNotFound) as info:
        create_dataset("ds", f"s3://{bucket}", files={"a.txt": tmp_path / "a.txt", "b": missing})
    assert str(info.value) == f"local file not found: {missing}"
    assert frozen_datasets(s3, bucket) == []


def test_local_readme_that_is_not_utf8(
    dtool: Dtool, s3: S3Server, bucket: str, proto_uri: str, tmp_path: Path
) -> None:
    before = objects(s3, bucket)
    (tmp_path / "readme.yml").write_bytes(b"---\ndescription: caf\xe9\n")
    result = dtool.run("readme", "write", proto_uri, str(tmp_path / "readme.yml"), check=False)
    assert error_line(result) == (
        "Error: the input file is not UTF-8 text (invalid continuation byte at byte 20): save "
        "it as UTF-8 and try again"
    )
    assert objects(s3, bucket) == before


# -- damaged or foreign objects in the bucket ----------------------------------------------------


def test_readme_in_the_bucket_that_is_not_utf8(
    dtool: Dtool, s3: S3Server, bucket: str, frozen_uri: str
) -> None:
    key = key_of(frozen_uri, "README.yml")
    s3.client().put_object(Bucket=bucket, Key=key, Body=b"---\xff\xfe\n")
    result = dtool.run("readme", "show", frozen_uri, check=False)
    assert (
        error_line(result) == f"Error: s3://{bucket}/{key} is not UTF-8 text; rewrite it as UTF-8"
    )


def damaged(uri: str) -> str:
    return (
        "is not valid JSON (Expecting property name enclosed in double quotes: line 1 column 2 "
        "(char 1)): the dataset is damaged; restore that object from a copy of the dataset, or "
        f"delete the dataset with 'dtool s3 rm {uri}'"
    )


@pytest.mark.parametrize("name", ["dtool", "manifest.json"])
def test_corrupted_json_object(
    dtool: Dtool, s3: S3Server, bucket: str, frozen_uri: str, tmp_path: Path, name: str
) -> None:
    with api(s3, bucket, tmp_path):
        other = create_dataset("intact", f"s3://{bucket}")
    key = key_of(frozen_uri, name)
    s3.client().put_object(Bucket=bucket, Key=key, Body=b"{broken")
    result = dtool.run("summary", frozen_uri, check=False)
    assert error_line(result) == f"Error: s3://{bucket}/{key} {damaged(frozen_uri)}"
    listing = dtool.run("ls", "-q", f"s3://{bucket}")
    expected = [other] if name == "dtool" else sorted([other, frozen_uri])
    assert listing.stdout.split() == expected
    if name == "dtool":
        shown = f"skipping a damaged dataset: s3://{bucket}/{key} {damaged(frozen_uri)}"
        assert shown in listing.stderr


@pytest.mark.parametrize("name", ["structure.json", "fragment"])
def test_corrupted_json_object_of_a_proto_dataset(
    dtool: Dtool, s3: S3Server, bucket: str, proto_uri: str, tmp_path: Path, name: str
) -> None:
    with api(s3, bucket, tmp_path):
        dtoolcore.ProtoDataSet.from_uri(proto_uri).add_item_metadata("a.txt", "k", "v")
    ident = dtoolcore.utils.generate_identifier("a.txt")
    key = key_of(
        proto_uri, "structure.json" if name == "structure.json" else f"fragments/{ident}.k.json"
    )
    s3.client().put_object(Bucket=bucket, Key=key, Body=b"{broken")
    result = dtool.run("freeze", proto_uri, check=False)
    assert error_line(result) == f"Error: s3://{bucket}/{key} {damaged(proto_uri)}"
    assert frozen_datasets(s3, bucket) == []
    assert not any(key.endswith("/manifest.json") for key in objects(s3, bucket))


def test_foreign_keys_in_the_bucket_root(
    dtool: Dtool, s3: S3Server, bucket: str, frozen_uri: str, proto_uri: str, tmp_path: Path
) -> None:
    client = s3.client()
    foreign = {
        "foo/bar.txt": b"another tool",
        "dtoolstray": b"",
        "dtool-": b"",
        "dtool-notauuid": b"",
        "dtool-0000000-0000-4000-8000-000000000000": b"",
        f"dtool-{MISSING_UUID}": b"",
        "dtool-11111111-1111-4111-8111-111111111111": b"\xff\xfe/",
        "dtool-22222222-2222-4222-8222-222222222222/x": b"",
        "dtool/readme": b"",
    }
    for key, body in foreign.items():
        client.put_object(Bucket=bucket, Key=key, Body=body)
    result = dtool.run("ls", "-q", f"s3://{bucket}")
    assert result.stdout.split() == sorted([frozen_uri, proto_uri])
    assert "Traceback" not in result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(warnings) == 1, result.stderr
    assert (
        f"skipping a damaged dataset: s3://{bucket}/dtool-11111111-1111-4111-8111-111111111111 "
        "is not UTF-8 text: the dataset is damaged"
    ) in warnings[0]
    with api(s3, bucket, tmp_path):
        listed = list_datasets(f"s3://{bucket}")
    assert [info.uri for info in listed] == sorted([frozen_uri, proto_uri])


def test_corrupted_item_is_detected_by_deep_verify(
    s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    local = make_source_dataset(tmp_path / "local")
    with api(s3, bucket, tmp_path):
        uri = copy_dataset(str(local), f"s3://{bucket}")
        assert verify_dataset(uri) == []
        assert verify_dataset(uri, deep=True) == []
        uuid = uri.rsplit("/", 1)[1]
        ident = dtoolcore.utils.generate_identifier("hello.txt")
        head = s3.client().head_object(Bucket=bucket, Key=f"{uuid}/data/{ident}")
        s3.client().put_object(
            Bucket=bucket, Key=f"{uuid}/data/{ident}", Body=b"HELLO\n", Metadata=head["Metadata"]
        )
        problems = verify_dataset(uri, deep=True)
    found, expected = (hashlib.md5(body).hexdigest() for body in (b"HELLO\n", b"hello\n"))
    assert problems == [
        f"content differs: hello.txt: s3://{bucket}/{uuid}/data/{ident} has MD5 {found} but the "
        f"manifest says {expected}: "
        "the item is corrupted in the bucket"
    ]


# -- configuration values ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "DTOOL_S3_MAX_CONCURRENCY",
            "abc",
            "DTOOL_S3_MAX_CONCURRENCY in the environment must be a number, got 'abc': use a whole "
            "number such as 16",
        ),
        (
            "DTOOL_S3_MAX_ATTEMPTS",
            "0",
            "DTOOL_S3_MAX_ATTEMPTS in the environment must be more than 0, got 0: the default is 8",
        ),
        (
            "DTOOL_S3_PUBLISH_EXPIRY",
            "0",
            "DTOOL_S3_PUBLISH_EXPIRY in the environment must be between 1 and 604800 seconds "
            "(7 days, the SigV4 limit), got 0",
        ),
        (
            "DTOOL_S3_ENDPOINT_{b}",
            "127.0.0.1:9000",
            "DTOOL_S3_ENDPOINT_{b} in the environment must be an http:// or https:// URL, "
            "got '127.0.0.1:9000'",
        ),
        (
            "DTOOL_S3_ADDRESSING_STYLE",
            "sideways",
            "DTOOL_S3_ADDRESSING_STYLE in the environment must be auto, path or virtual, got "
            "'sideways'",
        ),
        (
            "DTOOL_S3_MULTIPART_PART_SIZE",
            "1MiB",
            "DTOOL_S3_MULTIPART_PART_SIZE in the environment must be at least 5 MiB (the S3 "
            "limit), got 1048576 bytes",
        ),
    ],
    ids=["concurrency", "attempts", "expiry", "endpoint", "addressing", "part-size"],
)
def test_invalid_configuration_value(
    dtool: Dtool, s3: S3Server, bucket: str, name: str, value: str, message: str
) -> None:
    dtool.env[name.format(b=bucket)] = value
    result = dtool.run("create", "ds", f"s3://{bucket}", check=False)
    assert error_line(result) == "Error: " + message.format(b=bucket)
    assert objects(s3, bucket) == {}
