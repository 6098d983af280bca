"""``dtool s3 cp | verify | doctor`` through the real dtool CLI, on every loopback server."""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path

import dtoolcore
import pytest
from dtoolcore.storagebroker import DiskStorageBroker

from dtool_s3_core import api, create_dataset
from dtool_s3_core.broker import S3StorageBroker
from tests.conftest import (
    SOURCE_FILES,
    VENV_BIN,
    Dtool,
    bucket_env,
    local_dataset,
    make_source_dataset,
    use_server,
)
from tests.core.test_progress_cli import on_screen
from tests.core.test_tls import wrong_name_server  # noqa: F401 (a fixture)
from tests.support.proxy import S3Proxy
from tests.support.servers import S3Server

HELLO_ID = "3857b672471862eab426eba0622e44bd2cedbd5d"  # identifier of "hello.txt"


def through(dtool: Dtool, s3: S3Server, endpoint: str, *buckets: str) -> None:
    """Point ``dtool`` at ``endpoint`` (e.g. a proxy) for these buckets."""
    for name in buckets:
        dtool.env.update(bucket_env(s3, name))
        dtool.env[f"DTOOL_S3_ENDPOINT_{name}"] = endpoint


def new_bucket(s3: S3Server) -> str:
    name = f"cli-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(name)
    return name


def files_in(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file()] if directory.exists() else []


def test_cp_local_to_s3_to_local_leaves_the_cache_empty(
    dtool: Dtool, bucket: str, tmp_path: Path
) -> None:
    local = make_source_dataset(tmp_path / "local")
    lines = dtool("s3", "cp", str(local), f"s3://{bucket}").splitlines()
    uri = lines[-1]
    assert uri.startswith(f"s3://{bucket}/") and len(lines) == 2
    assert lines[0].startswith(f"transferred {len(SOURCE_FILES)} of {len(SOURCE_FILES)} items")
    assert "skipped" not in lines[0]
    assert "All good" in dtool("verify", "-f", uri)
    assert dtool("s3", "verify", uri).strip() == "All good :)"

    (tmp_path / "out").mkdir()
    download = dtool.run("s3", "cp", uri, str(tmp_path / "out"))
    assert download.stderr == ""  # no progress bar off a terminal
    copied_uri = download.stdout.splitlines()[-1]
    copied = tmp_path / "out" / "ds1"
    assert copied_uri.startswith("file://") and copied_uri.endswith(copied.as_posix())
    assert files_in(tmp_path / "cache") == []
    assert "All good" in dtool("verify", "-f", copied_uri)
    assert dtool.run("diff", "--full", str(local), str(copied)).returncode == 0
    assert "kind" in dtool("overlays", "show", copied_uri)
    for relpath, content in SOURCE_FILES.items():
        assert (copied / "data" / relpath).read_bytes() == content

    again = dtool.run("s3", "cp", uri, str(tmp_path / "out"), check=False)
    assert again.returncode == 1 and "Traceback" not in again.stderr
    assert again.stderr.strip() == (
        f"Error: a dataset already exists at {copied_uri} (a frozen copy): copy with "
        f"'dtool s3 cp --resume {uri} {tmp_path / 'out'}' to finish or reuse it, or delete it first"
    )
    resumed = dtool("s3", "cp", "--resume", uri, str(tmp_path / "out")).splitlines()
    assert f"{len(SOURCE_FILES)} skipped" in resumed[0] and resumed[-1] == copied_uri
    assert dtool("s3", "cp", "--quiet", "--resume", uri, str(tmp_path / "out")) == copied_uri + "\n"


def test_a_download_to_disk_reads_each_item_once(
    dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The copy is frozen with the MD5s verified while downloading: dtoolcore's disk hasher
    (which its freeze would run over every item, a second read of the whole dataset) never runs,
    and the real ``dtool verify -f`` (which re-hashes every file) agrees with the manifest."""
    local = make_source_dataset(tmp_path / "local")
    hashed: list[str] = []
    disk_hasher = DiskStorageBroker.hasher

    class Counting:
        name = disk_hasher.name

        def __call__(self, filename: str) -> str:
            hashed.append(filename)
            return str(disk_hasher(filename))

    with use_server(s3, bucket, tmp_path):
        uri = api.copy(local.as_uri(), f"s3://{bucket}").uri
        (tmp_path / "out").mkdir()
        monkeypatch.setattr(DiskStorageBroker, "hasher", Counting())
        copied = api.copy(uri, str(tmp_path / "out")).uri
        frozen_at = dtoolcore.DataSet.from_uri(uri).admin_metadata["frozen_at"]
    assert hashed == []
    monkeypatch.undo()
    assert "All good" in dtool("verify", "-f", copied)
    assert dtool.run("diff", "--full", str(local), copied).returncode == 0
    assert "kind" in dtool("overlays", "show", copied)
    assert dtoolcore.DataSet.from_uri(copied).admin_metadata["frozen_at"] == frozen_at


def test_resume_to_local_replaces_partial_files(dtool: Dtool, bucket: str, tmp_path: Path) -> None:
    uri = dtool("s3", "cp", "-q", str(make_source_dataset(tmp_path / "local")), f"s3://{bucket}")
    uri = uri.strip()
    (tmp_path / "out").mkdir()
    copied = tmp_path / "out" / "ds1"
    dtool("s3", "cp", "-q", uri, str(tmp_path / "out"))
    # An interrupted copy: still a proto dataset, one item cut short, one partial download left.
    admin_path = copied / ".dtool" / "dtool"
    admin = json.loads(admin_path.read_text())
    admin_path.write_text(json.dumps({**admin, "type": "protodataset"}))
    (copied / ".dtool" / "manifest.json").unlink()
    (copied / "data" / "hello.txt").write_bytes(b"hel")
    (copied / "data" / "hello.txt.x1y2.part").write_bytes(b"he")
    lines = dtool("s3", "cp", "--resume", uri, str(tmp_path / "out")).splitlines()
    assert lines[0].startswith(f"transferred 1 of {len(SOURCE_FILES)} items")
    assert (copied / "data" / "hello.txt").read_bytes() == b"hello\n"
    assert not (copied / "data" / "hello.txt.x1y2.part").exists()
    assert "All good" in dtool("verify", "-f", copied.as_uri())


def test_cp_to_a_missing_directory_is_one_line(dtool: Dtool, bucket: str, tmp_path: Path) -> None:
    uri = dtool("s3", "cp", "-q", str(make_source_dataset(tmp_path / "local")), f"s3://{bucket}")
    result = dtool.run("s3", "cp", uri.strip(), str(tmp_path / "nowhere"), check=False)
    assert result.returncode == 1
    assert result.stderr == (
        f"Error: destination directory not found: {tmp_path / 'nowhere'}: create it first\n"
    )


def test_cp_next_to_another_dataset_of_that_name_is_refused(
    dtool: Dtool, bucket: str, tmp_path: Path
) -> None:
    uri = dtool("s3", "cp", "-q", str(make_source_dataset(tmp_path / "local")), f"s3://{bucket}")
    other = make_source_dataset(tmp_path / "out")  # also called ds1, another UUID
    before = sorted(files_in(tmp_path / "out"))
    result = dtool.run("s3", "cp", uri.strip(), str(tmp_path / "out"), check=False)
    found = dtoolcore.DataSet.from_uri(str(other))
    assert result.returncode == 1
    assert result.stderr == (
        f"Error: another dataset (UUID {found.uuid}) already exists at {found.uri}: copy to "
        "another directory, or delete it first\n"
    )
    assert sorted(files_in(tmp_path / "out")) == before


def test_a_corrupted_source_item_stops_a_relayed_copy(
    dtool: Dtool, s3: S3Server, proxy: S3Proxy, bucket: str, tmp_path: Path
) -> None:
    dest = new_bucket(s3)
    through(dtool, s3, proxy.url, dest)
    uri = dtool("s3", "cp", "-q", str(make_source_dataset(tmp_path / "local")), f"s3://{bucket}")
    uuid_ = uri.strip().rsplit("/", 1)[1]
    key = f"{uuid_}/data/{HELLO_ID}"
    client = s3.client()
    metadata = client.head_object(Bucket=bucket, Key=key)["Metadata"]
    client.put_object(Bucket=bucket, Key=key, Body=b"HELLO\n", Metadata=metadata)
    result = dtool.run("s3", "cp", uri.strip(), f"s3://{dest}", check=False)
    assert result.returncode == 1
    assert result.stderr == (
        f"Error: s3://{bucket}/{key} has MD5 0084467710d2fc9d8a306e14efbe6d0f (6 bytes) but the "
        "source manifest says b1946ac92492d2347c6235b4d2611184 (6 bytes) for 'hello.txt': the "
        f"source item is corrupted; s3://{dest}/{uuid_} stays a proto dataset\n"
    )
    assert dtool("status", f"s3://{dest}/{uuid_}").strip() == "proto"


def test_server_side_copy_moves_no_item_bytes(
    dtool: Dtool, s3: S3Server, proxy: S3Proxy, tmp_path: Path
) -> None:
    src, dest = new_bucket(s3), new_bucket(s3)
    through(dtool, s3, proxy.url, src, dest)
    items = {f"item-{n}.bin": os.urandom(100_000 + n) for n in range(20)}
    local = local_dataset(tmp_path / "local", "many", items)
    src_uri = dtool("s3", "cp", "-q", str(local), f"s3://{src}").strip()
    proxy.stats.reset()
    lines = dtool("s3", "cp", src_uri, f"s3://{dest}").splitlines()
    ops = proxy.stats.snapshot()["by_operation"]
    assert ops.get("CopyObject") == len(items)
    # No item is read or written through this host: the few GETs and PUTs are metadata.
    assert ops.get("GetObject", 0) < 10 and ops.get("PutObject", 0) < 10
    assert "UploadPart" not in ops
    assert lines[0].startswith(f"copied by the server {len(items)} of {len(items)} items")
    assert lines[-1] == f"s3://{dest}/{src_uri.rsplit('/', 1)[1]}"
    assert dtool("s3", "verify", "--deep", lines[-1]).strip() == "All good :)"


def test_copy_across_endpoints_streams_every_item(
    dtool: Dtool, s3: S3Server, proxy: S3Proxy, bucket: str, tmp_path: Path
) -> None:
    dest = new_bucket(s3)
    through(dtool, s3, proxy.url, dest)  # the source bucket is reached directly: two services
    dtool.env["DTOOL_S3_MULTIPART_PART_SIZE"] = "5MiB"
    items = {"small.bin": os.urandom(1000), "large.bin": os.urandom(12 * 1024 * 1024)}
    src_uri = dtool("s3", "cp", "-q", str(local_dataset(tmp_path, "two", items)), f"s3://{bucket}")
    proxy.stats.reset()
    lines = dtool("s3", "cp", src_uri.strip(), f"s3://{dest}").splitlines()
    ops = proxy.stats.snapshot()["by_operation"]
    assert ops.get("UploadPart") == 3 and ops.get("CompleteMultipartUpload") == 1
    assert "CopyObject" not in ops
    assert lines[0].startswith("transferred 2 of 2 items")
    assert files_in(tmp_path / "cache") == []
    assert dtool("s3", "verify", "--deep", lines[-1]).strip() == "All good :)"


def test_a_changed_object_fails_verify_by_relpath(
    dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    uri = dtool("s3", "cp", "-q", str(make_source_dataset(tmp_path / "local")), f"s3://{bucket}")
    uri = uri.strip()
    key = f"{uri.rsplit('/', 1)[1]}/data/{HELLO_ID}"
    client = s3.client()
    metadata = client.head_object(Bucket=bucket, Key=key)["Metadata"]
    # Same size, same stored checksum metadata: only the bytes (and so the ETag) changed.
    client.put_object(Bucket=bucket, Key=key, Body=b"HELLO\n", Metadata=metadata)
    assert "All good" in dtool("verify", "-f", uri)
    shallow = dtool.run("s3", "verify", uri, check=False)
    assert shallow.returncode == 1 and shallow.stdout == "ETag differs: hello.txt\n"
    deep = dtool.run("s3", "verify", "--deep", uri, check=False)
    assert deep.returncode == 1
    assert deep.stdout.splitlines() == [
        "ETag differs: hello.txt",
        f"content differs: hello.txt: s3://{bucket}/{key} has MD5 "
        "0084467710d2fc9d8a306e14efbe6d0f but the manifest says b1946ac92492d2347c6235b4d2611184: "
        "the item is corrupted in the bucket",
    ]
    assert files_in(tmp_path / "cache") == []


def test_doctor_shows_sources_and_never_the_secret(
    dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    config = tmp_path / "home" / ".config" / "dtool" / "dtool.json"
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps({"DTOOL_S3_MAX_CONCURRENCY": "4"}))
    dtool.env["DTOOL_S3_DATASET_PREFIX"] = "team/"
    result = dtool.run("s3", "doctor", "--write-test", f"s3://{bucket}", check=False)
    out = result.stdout + result.stderr
    assert s3.secret_key not in out
    assert "Traceback" not in out
    assert f"DTOOL_S3_ENDPOINT_{bucket} in the environment" in out
    assert f"DTOOL_S3_MAX_CONCURRENCY in {config}" in out
    assert "DTOOL_S3_DATASET_PREFIX in the environment" in out
    assert "******** (set, hidden)" in out
    checks = {line.split()[1]: line.split()[0] for line in out.splitlines()[-8:]}
    assert checks == {
        "endpoint": "OK",
        "tls": "OK",
        "credentials": "OK",
        "bucket": "OK",
        "listing": "OK",
        "write": "OK",
        "acl": "OK" if s3.supports_public_acl else "FAIL",
        "engine": "OK",
    }
    assert f"item bodies go through awscrt: wrote and read back s3://{bucket}/team/" in out
    assert result.returncode == (0 if s3.supports_public_acl else 1)
    assert s3.client().list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    dtool.env["DTOOL_S3_ENGINE"] = "botocore"
    fallback = dtool.run("s3", "doctor", f"s3://{bucket}", check=False)
    assert fallback.stdout.splitlines()[-1].split(maxsplit=2) == [
        "OK",
        "engine",
        "item bodies go through botocore (DTOOL_S3_ENGINE is botocore)",
    ]


def test_doctor_fails_in_one_line_for_a_missing_bucket(dtool: Dtool, s3: S3Server) -> None:
    missing = f"missing-{uuid.uuid4().hex[:8]}"
    dtool.add_bucket(s3, missing)
    result = dtool.run("s3", "doctor", f"s3://{missing}", check=False)
    out = result.stdout + result.stderr
    assert result.returncode == 1 and s3.secret_key not in out
    failures = [line.strip() for line in out.splitlines() if line.strip().startswith("FAIL")]
    assert failures == [
        f"FAIL bucket      bucket '{missing}' does not exist at {s3.endpoint_url}: create it, "
        f"or check the bucket name and DTOOL_S3_ENDPOINT_{missing} in the environment"
    ]


def test_doctor_names_the_aws_profile_of_chain_credentials(
    dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    aws = tmp_path / "home" / ".aws"
    aws.mkdir()
    (aws / "credentials").write_text(
        f"[lab]\naws_access_key_id = {s3.access_key}\naws_secret_access_key = {s3.secret_key}\n"
    )
    for name in (f"DTOOL_S3_ACCESS_KEY_ID_{bucket}", f"DTOOL_S3_SECRET_ACCESS_KEY_{bucket}"):
        del dtool.env[name]
    dtool.env["AWS_PROFILE"] = "lab"
    result = dtool.run("s3", "doctor", f"s3://{bucket}", check=False)
    assert s3.secret_key not in result.stdout + result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert lines["DTOOL_S3_SECRET_ACCESS_KEY"].split()[1:] == [
        "********",
        "(set,",
        "hidden)",
        "AWS",
        "chain:",
        "shared-credentials-file",
        "(profile",
        "'lab')",
    ]
    assert "environment AWS_PROFILE" in lines["DTOOL_S3_PROFILE"]
    assert "OK   credentials" in result.stdout


def test_doctor_fails_in_one_line_for_a_wrong_secret(
    dtool: Dtool, s3: S3Server, bucket: str
) -> None:
    if not s3.verifies_signatures:
        pytest.skip(f"{s3.name} accepts any secret")
    wrong = "wrong-secret-" + uuid.uuid4().hex
    dtool.env[f"DTOOL_S3_SECRET_ACCESS_KEY_{bucket}"] = wrong
    result = dtool.run("s3", "doctor", f"s3://{bucket}", check=False)
    out = result.stdout + result.stderr
    assert result.returncode == 1 and wrong not in out
    failures = [line.strip() for line in out.splitlines() if line.strip().startswith("FAIL")]
    assert failures == [
        "FAIL credentials the server said SignatureDoesNotMatch: set "
        f"DTOOL_S3_ACCESS_KEY_ID_{bucket} and DTOOL_S3_SECRET_ACCESS_KEY_{bucket} in the "
        "environment, or configure an AWS profile"
    ]


def test_doctor_fails_in_one_line_for_a_certificate_of_another_host(
    wrong_name_server: tuple[int, Path],  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
) -> None:
    port, cert = wrong_name_server
    dtool = Dtool(
        VENV_BIN,
        {
            "HOME": str(tmp_path / "home"),
            "AWS_CA_BUNDLE": str(cert),
            "DTOOL_S3_ENDPOINT_tls-bucket": f"https://127.0.0.1:{port}",
            "DTOOL_S3_ACCESS_KEY_ID_tls-bucket": "AKIDTLS",
            "DTOOL_S3_SECRET_ACCESS_KEY_tls-bucket": "tls-secret",
        },
    )
    result = dtool.run("s3", "doctor", "s3://tls-bucket", check=False)
    checks = [line.split(maxsplit=2) for line in result.stdout.splitlines()[-8:]]
    assert result.returncode == 1 and "tls-secret" not in result.stdout + result.stderr
    assert [c[:2] for c in checks] == [
        ["OK", "endpoint"],
        ["FAIL", "tls"],
        *(
            ["SKIP", name]
            for name in ("credentials", "bucket", "listing", "write", "acl", "engine")
        ),
    ]
    assert checks[1][2].startswith("TLS handshake with 127.0.0.1 failed (")


def test_publish_reads_the_expiry_when_it_is_called(
    s3: S3Server, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with use_server(s3, bucket, tmp_path):
        uri = create_dataset("pub", f"s3://{bucket}", files={"a.txt": _file(tmp_path, b"a\n")})
    for name, value in bucket_env(s3, bucket).items():
        monkeypatch.setenv(name, value)
    broker = S3StorageBroker(uri)
    dataset = dtoolcore.DataSet.from_uri(uri)
    monkeypatch.setenv("DTOOL_S3_PUBLISH_EXPIRY", "600")
    for url in (broker.http_enable(), dataset._storage_broker.http_enable()):
        assert "X-Amz-Expires=600" in url


def _file(where: Path, content: bytes) -> Path:
    path = where / "content"
    path.write_bytes(content)
    return path


def test_progress_moves_in_bytes_during_a_large_item_on_a_tty(
    dtool: Dtool, s3: S3Server, proxy: S3Proxy, tmp_path: Path
) -> None:
    dest = new_bucket(s3)
    through(dtool, s3, proxy.url, dest)
    # Small parts, two at a time, each delayed by the proxy: the upload takes a few seconds.
    dtool.env.update(
        {
            "DTOOL_S3_MULTIPART_THRESHOLD": "8MiB",
            "DTOOL_S3_MULTIPART_PART_SIZE": "5MiB",
            "DTOOL_S3_MAX_CONCURRENCY": "2",
        }
    )
    proxy.latency = 0.2
    local = local_dataset(tmp_path / "local", "big", {"big.bin": os.urandom(64 * 1024 * 1024)})
    copied = on_screen(dtool, "s3", "cp", str(local), f"s3://{dest}")
    shown = re.compile(r"(\d+)% +([\d.]+)/67\.1 MB +(\d)/1 items")
    frames = [m.groups() for frame in copied.erased if (m := shown.search(frame))]
    moving = {done for _, done, _ in frames if done not in ("0.0", "67.1")}
    assert len(moving) >= 2, copied.erased
    assert all(items == "0" for percent, _, items in frames if percent != "100"), frames
    summary, uri = copied.text()
    assert summary.startswith("transferred 1 of 1 items, 67.1 MB in ")
    assert uri.startswith(f"s3://{dest}/")
    assert on_screen(dtool, "s3", "verify", "--deep", uri).text() == ["All good :)"]
