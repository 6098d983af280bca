"""Where S3 fidelity matters, against Ceph RGW: authentication, Content-MD5, ACLs, expiry.

moto accepts any signature, ignores Content-MD5 and never expires a presigned URL; SeaweedFS has
no public ACLs. radosgw enforces all of these, so these tests run on Ceph only. radosgw's own
debug log shows what it received (the Content-MD5 of every upload and every part).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from dtoolcore.utils import generate_identifier

from dtool_s3_core import copy_dataset, publish_dataset, verify_dataset
from tests.conftest import (
    SOURCE_FILES,
    VENV_BIN,
    Dtool,
    bucket_env,
    make_source_dataset,
    use_server,
)
from tests.support.ceph import CephServer

MiB = 1024 * 1024
BIG = 12 * MiB
ALL_RELPATHS = {*SOURCE_FILES, "big.bin"}
UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
# radosgw's per-request debug lines: "... req <id> <elapsed>s <message>".
_RGW_REQ_RE = re.compile(r" req (\d+) [0-9.]+s (.*)$")
_RGW_LOG_WAIT = 10.0


@dataclass(frozen=True)
class Source:
    """A frozen local dataset (``dataset``) and the files it was made from (``files``)."""

    dataset: Path
    files: Path


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Source:
    where = tmp_path_factory.mktemp("source")
    return Source(make_source_dataset(where, big_size=BIG), where / "src")


# -- helpers ---------------------------------------------------------------------------------


def copy_up(runner: Dtool, source: Path, bucket: str) -> str:
    """``dtool cp`` a local dataset into ``bucket``; return the new dataset's URI."""
    uri = runner("cp", "-q", str(source), f"s3://{bucket}").strip().splitlines()[-1]
    assert re.fullmatch(rf"s3://{re.escape(bucket)}/{UUID_RE}", uri), uri
    return uri


def copy_down(runner: Dtool, uri: str, dest: Path) -> Path:
    """``dtool cp`` a dataset into the new directory ``dest``; return its data directory."""
    dest.mkdir()
    runner("cp", "-q", uri, str(dest))
    (dataset,) = dest.iterdir()
    return dataset / "data"


def assert_same_files(copied: Path, original: Path) -> None:
    def tree(root: Path) -> dict[str, bytes]:
        return {
            p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()
        }

    assert tree(copied) == tree(original)


def item_key(uri: str, relpath: str) -> str:
    return f"{uri.rsplit('/', 1)[1]}/data/{generate_identifier(relpath)}"


def anonymous_get(url: str) -> tuple[int, bytes]:
    """GET without credentials or proxies; return the status and body."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@contextmanager
def scoped(ceph: CephServer, bucket: str, tmp_path: Path) -> Iterator[None]:
    """Configure the in-process API for ``bucket`` on Ceph, with a download cache of the test."""
    with use_server(ceph, bucket, tmp_path):
        yield


@dataclass
class RgwRequest:
    """One request as radosgw logged it."""

    op: str = ""
    bucket: str = ""
    key: str = ""
    part: int | None = None
    content_md5: str | None = None


@dataclass
class RgwRequests:
    """The requests radosgw logged for one bucket inside :func:`rgw_requests`."""

    requests: list[RgwRequest] = field(default_factory=list)

    def puts(self) -> list[RgwRequest]:
        """Every request that stored bytes: PutObject and UploadPart."""
        return [r for r in self.requests if r.op == "s3:put_obj"]


@contextmanager
def rgw_requests(ceph: CephServer, bucket: str) -> Iterator[RgwRequests]:
    """Record what radosgw received for ``bucket`` while the block runs (debug_rgw 15)."""
    log = ceph.rgw_log
    start = log.stat().st_size
    seen = RgwRequests()
    ceph.set_rgw_option("debug_rgw", "15")
    try:
        yield seen
        # radosgw logs from a thread of its own: once a request made afterwards is in the log,
        # so is everything before it.
        sentinel = f"sentinel-{uuid.uuid4().hex}"
        with pytest.raises(ClientError):
            ceph.client().head_object(Bucket=bucket, Key=sentinel)
        deadline = time.monotonic() + _RGW_LOG_WAIT
        while f"s->object={sentinel} " not in (text := _read_from(log, start)):
            assert time.monotonic() < deadline, "radosgw did not log the sentinel request"
            time.sleep(0.05)
    finally:
        ceph.set_rgw_option("debug_rgw", "1/5")
    by_id: dict[str, RgwRequest] = {}
    for line in text.splitlines():
        match = _RGW_REQ_RE.search(line)
        if match:
            _parse_rgw_line(by_id.setdefault(match[1], RgwRequest()), match[2])
    seen.requests = [r for r in by_id.values() if r.bucket == bucket and r.key != sentinel]


def _read_from(path: Path, offset: int) -> str:
    with path.open("rb") as log:
        log.seek(offset)
        return log.read().decode("utf-8", "replace")


def _parse_rgw_line(request: RgwRequest, message: str) -> None:
    if match := re.fullmatch(r"s->object=(\S+) s->bucket=(\S+)", message):
        request.key, request.bucket = match[1], match[2]
    elif match := re.match(r"(s3:\w+) op=", message):
        request.op = match[1]
    elif match := re.fullmatch(r"name: partNumber val: (\d+)", message):
        request.part = int(match[1])
    elif match := re.search(r" supplied_md5=([0-9a-f]{32})$", message):
        request.content_md5 = match[1]


# -- authentication --------------------------------------------------------------------------


def test_wrong_secret_is_one_line_access_denied(
    ceph: CephServer, bucket: str, source: Source, tmp_path: Path
) -> None:
    canary = f"canary-{secrets.token_hex(12)}"
    env = {**bucket_env(ceph, bucket), f"DTOOL_S3_SECRET_ACCESS_KEY_{bucket}": canary}
    runner = Dtool(VENV_BIN, {"HOME": str(tmp_path / "home"), **env})
    for args in (("ls", f"s3://{bucket}"), ("cp", "-q", str(source.dataset), f"s3://{bucket}")):
        result = runner.run(*args, check=False)
        output = (result.stdout + result.stderr).strip()
        assert result.returncode != 0, output
        assert len(output.splitlines()) == 1, output
        assert "access denied" in output.lower()
        assert "SignatureDoesNotMatch" in output
        assert canary not in output
        assert ceph.secret_key not in output
    assert ceph.client().list_objects_v2(Bucket=bucket)["KeyCount"] == 0


# -- integrity -------------------------------------------------------------------------------


def test_server_rejects_a_wrong_content_md5(ceph: CephServer, bucket: str) -> None:
    body = b"what was sent"
    wrong = base64.b64encode(hashlib.md5(b"what was meant").digest()).decode()
    with pytest.raises(ClientError) as info:
        ceph.client().put_object(Bucket=bucket, Key="item", Body=body, ContentMD5=wrong)
    assert info.value.response["Error"]["Code"] == "BadDigest"
    assert ceph.client().list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_copy_round_trip_sends_content_md5_for_every_upload_and_part(
    ceph: CephServer, bucket: str, dtool: Dtool, source: Source, tmp_path: Path
) -> None:
    # 12 MiB in 5 MiB parts: three parts of a multipart upload.
    dtool.env["DTOOL_S3_MULTIPART_THRESHOLD"] = "5MiB"
    dtool.env["DTOOL_S3_MULTIPART_PART_SIZE"] = "5MiB"
    with rgw_requests(ceph, bucket) as seen:
        uri = copy_up(dtool, source.dataset, bucket)

    puts = seen.puts()
    big = item_key(uri, "big.bin")
    assert {item_key(uri, relpath) for relpath in SOURCE_FILES} <= {r.key for r in puts}
    assert sorted(r.part or 0 for r in puts if r.key == big) == [1, 2, 3]
    assert [r.key for r in puts if r.content_md5 is None] == []
    head = ceph.client().head_object(Bucket=bucket, Key=big)
    assert head["ETag"].strip('"').endswith("-3")
    content = (source.files / "big.bin").read_bytes()
    assert head["Metadata"]["checksum"] == hashlib.md5(content).hexdigest()

    assert "All good" in dtool("verify", "-f", uri)
    assert_same_files(copy_down(dtool, uri, tmp_path / "down"), source.files)


def test_deep_verify_detects_an_item_corrupted_in_the_bucket(
    ceph: CephServer, bucket: str, source: Source, tmp_path: Path
) -> None:
    with scoped(ceph, bucket, tmp_path):
        uri = copy_dataset(str(source.dataset), f"s3://{bucket}")
        # Also fills the download cache, which must not hide what happens in the bucket.
        assert verify_dataset(uri, deep=True) == []
        key = item_key(uri, "hello.txt")
        client = ceph.client()
        metadata = client.head_object(Bucket=bucket, Key=key)["Metadata"]
        # Same size, same stored checksum: only the content tells.
        client.put_object(Bucket=bucket, Key=key, Body=b"HELLO\n", Metadata=metadata)
        assert verify_dataset(uri) == []
        problems = verify_dataset(uri, deep=True)
    assert len(problems) == 1, problems
    assert key in problems[0]
    assert "corrupted" in problems[0]


# -- compatibility with dtool-s3 0.14.1 ------------------------------------------------------


def test_oracle_reads_ours_and_we_read_the_oracles(
    ceph: CephServer, bucket: str, dtool: Dtool, oracle: Dtool, source: Source, tmp_path: Path
) -> None:
    ours = copy_up(dtool, source.dataset, bucket)
    assert "All good" in oracle("verify", "-f", ours)
    assert_same_files(copy_down(oracle, ours, tmp_path / "oracle-down"), source.files)

    # A bucket of its own: the oracle's copy of the same dataset keeps its UUID.
    other = f"test-{uuid.uuid4().hex[:12]}"
    ceph.create_bucket(other)
    oracle.add_bucket(ceph, other)
    dtool.add_bucket(ceph, other)
    theirs = copy_up(oracle, source.dataset, other)
    assert theirs in dtool("ls", f"s3://{other}")
    assert "All good" in dtool("verify", "-f", theirs)
    assert_same_files(copy_down(dtool, theirs, tmp_path / "our-down"), source.files)


# -- publishing ------------------------------------------------------------------------------


def test_publish_with_public_acls(
    ceph: CephServer, bucket: str, dtool: Dtool, source: Source
) -> None:
    uri = copy_up(dtool, source.dataset, bucket)
    url = dtool("publish", uri).strip().splitlines()[-1].split()[-1]
    assert url.startswith(f"{ceph.endpoint_url}/{bucket}/"), url

    status, body = anonymous_get(f"{url}/http_manifest.json")
    assert status == 200
    item_urls = json.loads(body)["item_urls"]
    status, content = anonymous_get(item_urls[generate_identifier("big.bin")])
    assert status == 200
    assert content == (source.files / "big.bin").read_bytes()
    listed = dtool("ls", url)
    assert all(relpath in listed for relpath in ALL_RELPATHS), listed
    # Only what a reader needs became public: not the bucket listing, not the admin metadata.
    assert anonymous_get(f"{ceph.endpoint_url}/{bucket}")[0] == 403
    assert anonymous_get(f"{url}/dtool")[0] == 403


def test_presigned_publish_expires(
    ceph: CephServer,
    bucket: str,
    dtool: Dtool,
    source: Source,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    uri = copy_up(dtool, source.dataset, bucket)
    monkeypatch.setenv("DTOOL_S3_PUBLISH_EXPIRY", "2")
    # In process, so that the URL is used well within its two seconds.
    with scoped(ceph, bucket, tmp_path):
        access_url = publish_dataset(uri)
    base, _, query = access_url.partition("?")
    manifest_url = f"{base}/http_manifest.json?{query}"
    status, body = anonymous_get(manifest_url)
    assert status == 200
    item_url = json.loads(body)["item_urls"][generate_identifier("hello.txt")]
    assert anonymous_get(item_url) == (200, b"hello\n")

    time.sleep(3)
    for url in (manifest_url, item_url):
        status, body = anonymous_get(url)
        assert status == 403
        assert b"AccessDenied" in body
