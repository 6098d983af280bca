"""Hostile or damaged datasets written into a bucket by hand (issue 10; docs/errors.md).

Each test makes a valid dataset, rewrites some of its objects with a plain boto3 client, and
checks what a reader must do: refuse with one ``Error:`` line that names the object, exit
non-zero, print no traceback, write nothing outside the destination and the download cache, and
never serve a byte that differs from what the bucket holds. Every traversal in these cases aims
at ``tmp_path/evil``, where a sentinel file waits; the whole of ``tmp_path`` is compared before
and after. The server does not matter here, so the cases run on moto only (``s3`` below).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import time
import uuid as uuidlib
from collections.abc import Callable
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from dtool_s3_core import copy_dataset, create_dataset
from dtool_s3_core._format.keys import identifier
from dtool_s3_core.errors import IntegrityError
from tests.conftest import Dtool, local_dataset, use_server
from tests.support.servers import S3Server, free_port

SENTINEL = b"sentinel: a traversal would overwrite this\n"
PAYLOAD = b"hostile payload, not the sentinel\n"
GENUINE = b"genuine bytes\n"
MiB = 1024 * 1024


@pytest.fixture
def s3(moto: S3Server) -> S3Server:
    """The server does not matter here: moto, for ``bucket`` and ``dtool`` as well."""
    return moto


# -- helpers -------------------------------------------------------------------------------------


def make_dataset(
    s3: S3Server,
    bucket: str,
    tmp_path: Path,
    name: str = "ds",
    files: dict[str, bytes] | None = None,
) -> str:
    """Create and freeze a dataset in ``bucket`` with the API; return its URI."""
    src = tmp_path / "src" / name
    src.mkdir(parents=True, exist_ok=True)
    paths = {}
    for number, (relpath, content) in enumerate((files or {"hello.txt": GENUINE}).items()):
        paths[relpath] = src / str(number)
        paths[relpath].write_bytes(content)
    with use_server(s3, bucket, tmp_path):
        return create_dataset(name, f"s3://{bucket}", files=paths)


def uuid_of(uri: str) -> str:
    return uri.rsplit("/", 1)[1]


def url(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def read_json(s3: S3Server, bucket: str, key: str) -> Any:
    return json.loads(s3.client().get_object(Bucket=bucket, Key=key)["Body"].read())


def put(
    s3: S3Server, bucket: str, key: str, body: bytes, metadata: dict[str, str] | None = None
) -> None:
    s3.client().put_object(Bucket=bucket, Key=key, Body=body, Metadata=metadata or {})


def edit_json(s3: S3Server, bucket: str, key: str, change: Callable[[Any], Any]) -> None:
    """Rewrite a JSON object of the bucket, keeping its S3 metadata headers."""
    found = s3.client().get_object(Bucket=bucket, Key=key)
    data = change(json.loads(found["Body"].read()))
    put(s3, bucket, key, json.dumps(data).encode(), found["Metadata"])


def put_item(s3: S3Server, bucket: str, uuid: str, ident: str, relpath: str, body: bytes) -> dict:
    """Store an item object under ``data/<ident>``; return its manifest entry."""
    md5 = hashlib.md5(body).hexdigest()
    handle = base64.b64encode(relpath.encode()).decode()
    put(s3, bucket, f"{uuid}/data/{ident}", body, {"handle": handle, "checksum": md5})
    return {"relpath": relpath, "size_in_bytes": len(body), "hash": md5, "utc_timestamp": 1.0}


def set_items(s3: S3Server, bucket: str, uuid: str, items: Any) -> None:
    edit_json(s3, bucket, f"{uuid}/manifest.json", lambda m: {**m, "items": items})


def tree(root: Path) -> dict[Path, tuple[int, int] | None]:
    """Every path below ``root``: (size, mtime) of files, None for directories."""
    found: dict[Path, tuple[int, int] | None] = {}
    for d, dirs, files in os.walk(root):
        found.update({Path(d) / n: None for n in dirs})
        for name in files:
            info = (Path(d) / name).lstat()
            found[Path(d) / name] = (info.st_size, info.st_mtime_ns)
    return found


class Watch:
    """Everything under ``tmp_path``, a sentinel at ``tmp_path/evil``, and what may change."""

    def __init__(self, tmp_path: Path, sentinel: bool = True) -> None:
        self.root = tmp_path
        self.evil = tmp_path / "evil"
        if sentinel:
            self.evil.write_bytes(SENTINEL)
        self.sentinel = sentinel
        self.before = tree(tmp_path)

    def check(self, *allowed: Path) -> None:
        """Nothing new or changed outside ``allowed`` and the cache; the sentinel is intact."""
        allowed = (*allowed, self.root / "cache")
        new = [p for p, state in tree(self.root).items() if self.before.get(p, 0) != state]
        outside = sorted(str(p) for p in new if not any(a == p or a in p.parents for a in allowed))
        assert outside == [], f"written outside {[str(a) for a in allowed]}: {outside[:5]}"
        if self.sentinel:
            assert self.evil.read_bytes() == SENTINEL, "the sentinel was overwritten"
        else:
            assert not self.evil.exists(), "a file was written at tmp_path/evil"


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    command = " ".join(str(a) for a in result.args[1:])[:200]
    text = result.stdout + result.stderr
    assert "Traceback" not in text, f"dtool {command}: traceback:\n{result.stderr[-1500:]}"


def refused(result: subprocess.CompletedProcess[str], where: str) -> str:
    """The one line of a refusal: exit != 0, no traceback, stderr is one ``Error:`` line."""
    command = "dtool " + " ".join(str(a) for a in result.args[1:])
    command = command if len(command) < 200 else command[:200] + "..."
    no_traceback(result)
    out = f"{result.stdout[-1500:]}\n{result.stderr[-1500:]}"
    assert result.returncode != 0, f"{command}: exit 0:\n{out}"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), f"{command}: not one line:\n{out}"
    assert where in lines[0], f"{command}: {where} not named in: {lines[0]}"
    return lines[0]


def listed(dtool: Dtool, bucket: str, uri: str) -> None:
    """``dtool ls`` of the bucket exits 0 and lists ``uri`` (a healthy dataset)."""
    result = dtool.run("ls", "-q", f"s3://{bucket}", check=False)
    no_traceback(result)
    assert result.returncode == 0, f"dtool ls s3://{bucket} exited {result.returncode}"
    assert uri in result.stdout.split(), f"{uri} not listed: {result.stdout}"


def expect(*checks: Callable[[], object]) -> None:
    """Run every check and report all that fail (a file written outside AND exit 0, say)."""
    failures = []
    for check in checks:
        try:
            check()
        except AssertionError as exc:
            failures.append(str(exc).split("\nassert ")[0])
    assert not failures, "\n---\n".join(failures)


def cp_out(dtool: Dtool, uri: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    return dtool.run("cp", "-q", uri, str(out), check=False), out


# -- 1. manifest identifiers that are not 40 lowercase hex ---------------------------------------


@pytest.mark.parametrize("command", ["cp", "item-fetch"])
@pytest.mark.parametrize(
    "ident", ["../../evil", "{tmp}/evil", "A" * 40], ids=["dotdot", "abs", "upper"]
)
def test_manifest_identifier_that_traverses(
    dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path, ident: str, command: str
) -> None:
    uri = make_dataset(s3, bucket, tmp_path)
    uuid, ident = uuid_of(uri), ident.format(tmp=tmp_path)
    # Relpath without a suffix: the cache file today is <cache>/<uuid>/<identifier>.
    set_items(s3, bucket, uuid, {ident: put_item(s3, bucket, uuid, ident, "evil", PAYLOAD)})
    watch = Watch(tmp_path)
    if command == "cp":
        result, out = cp_out(dtool, uri, tmp_path)
    else:
        result, out = dtool.run("item", "fetch", uri, ident, check=False), tmp_path / "out"
    expect(lambda: watch.check(out), lambda: refused(result, url(bucket, f"{uuid}/manifest.json")))


# -- 2. manifest relpaths that traverse ----------------------------------------------------------


@pytest.mark.parametrize(
    "relpath",
    [
        "../../../evil",
        "{tmp}/evil",
        "a/../../../../evil",
        "new\nline",
        "nul\x00byte",
        "sha1-mismatch",
    ],
    ids=["dotdot", "abs", "inner-dotdot", "newline", "nul", "id-not-sha1"],
)
def test_manifest_relpath_that_traverses(
    dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path, relpath: str
) -> None:
    uri = make_dataset(s3, bucket, tmp_path)
    uuid, relpath = uuid_of(uri), relpath.format(tmp=tmp_path)
    # From <out>/ds/data/, three '..' reach tmp_path: <out>/ds/data/../../../evil is tmp_path/evil.
    if relpath == "sha1-mismatch":
        relpath, ident = "hello.txt", identifier("another.txt")
    else:
        ident = identifier(relpath)
    set_items(s3, bucket, uuid, {ident: put_item(s3, bucket, uuid, ident, relpath, PAYLOAD)})
    watch = Watch(tmp_path)
    result, out = cp_out(dtool, uri, tmp_path)
    expect(lambda: watch.check(out), lambda: refused(result, url(bucket, f"{uuid}/manifest.json")))


# -- 3. names of datasets, tags, overlays and annotations ----------------------------------------


@pytest.mark.parametrize("name", ["..", "../evil", "a/b"])
def test_dataset_name_that_traverses(
    dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path, name: str
) -> None:
    uri = make_dataset(s3, bucket, tmp_path)
    edit_json(s3, bucket, f"{uuid_of(uri)}/dtool", lambda admin: {**admin, "name": name})
    # No sentinel: a dataset called '../evil' would be created at tmp_path/evil.
    watch = Watch(tmp_path, sentinel=False)
    result, out = cp_out(dtool, uri, tmp_path)
    expect(lambda: watch.check(out), lambda: refused(result, url(bucket, f"{uuid_of(uri)}/dtool")))


# Tags land in <out>/ds/.dtool/tags/, overlays and annotations in .../overlays/ and
# .../annotations/ with '.json' appended: four '..' reach tmp_path.
@pytest.mark.parametrize(
    ("key", "body"),
    [
        ("tags/../../../../evil", b""),
        ("tags/a b", b""),
        ("overlays/../../../../evil.json", b"{}"),
        ("annotations/../../../../evil.json", b'"value"'),
    ],
    ids=["tag-dotdot", "tag-space", "overlay-dotdot", "annotation-dotdot"],
)
def test_metadata_name_that_traverses(
    dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path, key: str, body: bytes
) -> None:
    uri = make_dataset(s3, bucket, tmp_path)
    if key.startswith("overlays/"):
        body = json.dumps({identifier("hello.txt"): 1}).encode()
    put(s3, bucket, f"{uuid_of(uri)}/{key}", body)
    watch = Watch(tmp_path)
    result, out = cp_out(dtool, uri, tmp_path)
    expect(lambda: watch.check(out), lambda: refused(result, url(bucket, f"{uuid_of(uri)}/{key}")))


# -- 4. admin metadata UUIDs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["other-uuid", "../../evil", 42], ids=["other", "not-uuid", "number"]
)
def test_admin_uuid_that_does_not_match(
    dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path, value: object
) -> None:
    healthy = make_dataset(s3, bucket, tmp_path, "healthy")
    uri = make_dataset(s3, bucket, tmp_path)
    value = str(uuidlib.uuid4()) if value == "other-uuid" else value
    edit_json(s3, bucket, f"{uuid_of(uri)}/dtool", lambda admin: {**admin, "uuid": value})
    watch = Watch(tmp_path)
    result, out = cp_out(dtool, uri, tmp_path)
    expect(
        lambda: watch.check(out),
        lambda: refused(result, url(bucket, f"{uuid_of(uri)}/dtool")),
        lambda: listed(dtool, bucket, healthy),
    )


# -- 5. nested, huge and mistyped JSON -----------------------------------------------------------


def deep(levels: int = 100_000) -> str:
    """Valid JSON nested ``levels`` deep."""
    return "[" * levels + "]" * levels


def _nested_admin(s3: S3Server, bucket: str, uuid: str) -> str:
    admin = read_json(s3, bucket, f"{uuid}/dtool")
    put(
        s3,
        bucket,
        f"{uuid}/dtool",
        json.dumps(admin)[:-1].encode() + b', "x": ' + deep().encode() + b"}",
    )
    return f"{uuid}/dtool"


def _nested_manifest(s3: S3Server, bucket: str, uuid: str) -> str:
    manifest = read_json(s3, bucket, f"{uuid}/manifest.json")
    body = json.dumps(manifest)[:-1] + ', "x": ' + deep() + "}"
    put(s3, bucket, f"{uuid}/manifest.json", body.encode())
    return f"{uuid}/manifest.json"


def _huge_admin(s3: S3Server, bucket: str, uuid: str) -> str:
    edit_json(s3, bucket, f"{uuid}/dtool", lambda admin: {**admin, "padding": "x" * (16 * MiB)})
    return f"{uuid}/dtool"


def _huge_registration(s3: S3Server, bucket: str, uuid: str) -> str:
    put(s3, bucket, f"dtool-{uuid}", b"p/" * (8 * MiB))
    return f"dtool-{uuid}"


def _item(change: Callable[[dict], Any]) -> Callable[[S3Server, str, str], str]:
    def damage(s3: S3Server, bucket: str, uuid: str) -> str:
        def items(manifest: dict) -> dict:
            return {**manifest, "items": {k: change(dict(v)) for k, v in manifest["items"].items()}}

        edit_json(s3, bucket, f"{uuid}/manifest.json", items)
        return f"{uuid}/manifest.json"

    return damage


def _items_as_list(s3: S3Server, bucket: str, uuid: str) -> str:
    edit_json(
        s3, bucket, f"{uuid}/manifest.json", lambda m: {**m, "items": list(m["items"].values())}
    )
    return f"{uuid}/manifest.json"


def _without(name: str) -> Callable[[dict], dict]:
    return lambda entry: {k: v for k, v in entry.items() if k != name}


DAMAGE: dict[str, Callable[[S3Server, str, str], str]] = {
    "nested-admin": _nested_admin,
    "nested-manifest": _nested_manifest,
    "huge-admin": _huge_admin,
    "huge-registration": _huge_registration,
    "item-is-a-string": _item(lambda entry: "not an object"),
    "no-relpath": _item(_without("relpath")),
    "no-size": _item(_without("size_in_bytes")),
    "size-as-string": _item(lambda entry: {**entry, "size_in_bytes": str(entry["size_in_bytes"])}),
    "hash-not-md5": _item(lambda entry: {**entry, "hash": "not-a-md5-hex-digest"}),
    "items-as-list": _items_as_list,
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_json(dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path, damage: str) -> None:
    healthy = make_dataset(s3, bucket, tmp_path, "healthy")
    uri = make_dataset(s3, bucket, tmp_path)
    key = DAMAGE[damage](s3, bucket, uuid_of(uri))
    (tmp_path / "out").mkdir()
    watch = Watch(tmp_path)
    checks: list[Callable[[], object]] = [lambda: listed(dtool, bucket, healthy)]
    for args in (("ls", uri), ("verify", uri), ("cp", "-q", uri, str(tmp_path / "out"))):
        result = dtool.run(*args, check=False)
        checks.append(partial(refused, result, url(bucket, key)))
    expect(*checks, lambda: watch.check(tmp_path / "out"))


# -- 6. a cache that lies ------------------------------------------------------------------------


@pytest.mark.parametrize("keep_mtime", [False, True], ids=["edited", "edited-same-mtime"])
def test_edited_cache_file_is_not_served(
    dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path, keep_mtime: bool
) -> None:
    uri = make_dataset(s3, bucket, tmp_path)
    ident = identifier("hello.txt")
    cached = Path(dtool("item", "fetch", uri, ident).strip())
    assert cached.read_bytes() == GENUINE
    stat = cached.stat()
    cached.chmod(0o644)
    cached.write_bytes(GENUINE.upper())  # same size, other bytes
    if keep_mtime:
        os.utime(cached, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    served = Path(dtool("item", "fetch", uri, ident).strip()).read_bytes()
    result, out = cp_out(dtool, uri, tmp_path)

    def copied() -> None:
        no_traceback(result)
        assert result.returncode == 0, result.stderr
        copy = (out / "ds" / "data" / "hello.txt").read_bytes()
        assert copy == GENUINE, f"dtool cp wrote {copy!r}, not the genuine {GENUINE!r}"

    def fetched() -> None:
        assert served == GENUINE, f"dtool item fetch served {served!r}, not {GENUINE!r}"

    expect(fetched, copied)


# -- 7. the same UUID in two buckets -------------------------------------------------------------


def clone_bucket(s3: S3Server, src: str, dest: str) -> None:
    client = s3.client()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=src):
        for entry in page.get("Contents", []):
            found = client.get_object(Bucket=src, Key=entry["Key"])
            put(s3, dest, entry["Key"], found["Body"].read(), found["Metadata"])


def test_same_uuid_in_two_buckets(dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path) -> None:
    other = f"{bucket}-b"
    s3.create_bucket(other)
    dtool.add_bucket(s3, other)
    uri_a = make_dataset(s3, bucket, tmp_path)
    uuid, ident = uuid_of(uri_a), identifier("hello.txt")
    clone_bucket(s3, bucket, other)
    in_b = GENUINE.upper()  # same size: the cache must not go by size
    entry = put_item(s3, other, uuid, ident, "hello.txt", in_b)
    set_items(s3, other, uuid, {ident: entry})
    uri_b = f"s3://{other}/{uuid}"

    def same(what: str, path: Path, expected: bytes) -> None:
        got = path.read_bytes()
        assert got == expected, f"{what} gave {got!r}, not {expected!r}"

    checks = []
    for order, (first, second, expected) in enumerate(
        [(uri_a, uri_b, in_b), (uri_b, uri_a, GENUINE)]
    ):
        dtool.env["DTOOL_CACHE_DIRECTORY"] = str(tmp_path / f"cache-{order}")
        dtool("item", "fetch", first, ident)  # fills the cache
        fetched = Path(dtool("item", "fetch", second, ident).strip())
        checks.append(partial(same, f"item fetch {second} after {first}", fetched, expected))
        out = tmp_path / f"out-{order}"
        out.mkdir()
        dtool("cp", "-q", second, str(out))
        copied = out / "ds" / "data" / "hello.txt"
        checks.append(partial(same, f"cp {second} after {first}", copied, expected))
    expect(*checks)


# -- 8. server-side copy of a corrupted source ---------------------------------------------------


def test_server_side_copy_of_a_corrupted_source(s3: S3Server, bucket: str, tmp_path: Path) -> None:
    other = f"{bucket}-b"
    s3.create_bucket(other)
    uri = make_dataset(s3, bucket, tmp_path)
    uuid, ident = uuid_of(uri), identifier("hello.txt")
    key = f"{uuid}/data/{ident}"
    head = s3.client().head_object(Bucket=bucket, Key=key)
    put(s3, bucket, key, GENUINE.upper(), head["Metadata"])  # same size, metadata kept
    error: Exception | None = None
    with ExitStack() as stack:
        stack.enter_context(use_server(s3, bucket, tmp_path))
        stack.enter_context(use_server(s3, other, tmp_path))
        try:
            copy_dataset(uri, f"s3://{other}")
        except Exception as exc:
            error = exc

    def raised() -> None:
        assert isinstance(error, IntegrityError), f"copy_dataset raised {error!r}"
        message = str(error)
        assert "\n" not in message and (ident in message or "hello.txt" in message), message

    def not_frozen() -> None:
        keys = [o["Key"] for o in s3.client().list_objects_v2(Bucket=other).get("Contents", [])]
        admin = read_json(s3, other, f"{uuid}/dtool") if f"{uuid}/dtool" in keys else {}
        assert admin.get("type", "protodataset") == "protodataset", "the copy is frozen"
        assert f"{uuid}/manifest.json" not in keys, "the copy has a manifest"

    expect(raised, not_frozen)


# -- 9. secrets ----------------------------------------------------------------------------------


def test_endpoint_password_is_never_shown(dtool: Dtool, s3: S3Server, bucket: str) -> None:
    host_port = s3.endpoint_url.split("://", 1)[1]
    dtool.env["DTOOL_S3_MAX_ATTEMPTS"] = "1"
    cases = [
        (bucket, f"http://user:hunter2pass@127.0.0.1:{free_port()}"),  # nothing listens
        ("no-such-bucket-hostile", f"http://user:hunter2pass@{host_port}"),  # the real server
        (bucket, f"http://user:hunter2pass@{host_port}"),
    ]

    def check(result: subprocess.CompletedProcess[str]) -> None:
        no_traceback(result)
        shown = [line for line in result.stderr.splitlines() if "hunter2pass" in line]
        assert shown == [], f"the endpoint password is shown: {shown}"

    checks = []
    for name, endpoint in cases:
        dtool.add_bucket(s3, name)
        dtool.env[f"DTOOL_S3_ENDPOINT_{name}"] = endpoint
        result = dtool.run("ls", f"s3://{name}", check=False)
        checks.append(partial(check, result))
    expect(*checks)


SIGNATURE = re.compile(
    r"Signature\W{0,4}[0-9a-f]{16}|Authorization['\"]?\s*[:=]\s*b?['\"]?AWS4", re.IGNORECASE
)


def test_debug_output_holds_no_credentials(
    dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    token, secret = "TOKEN-canary-2b9e41", "SECRET-canary-8c1d07"
    dtool.env[f"DTOOL_S3_SESSION_TOKEN_{bucket}"] = token
    dtool.env[f"DTOOL_S3_SECRET_ACCESS_KEY_{bucket}"] = secret
    local = local_dataset(tmp_path / "local", "small", {"a.txt": b"a\n"})

    def clean(text: str, args: tuple[str, ...]) -> None:
        assert "DEBUG" in text, f"dtool {args[1]}: no debug output; the check would prove nothing"
        leaks = [name for name, value in (("token", token), ("secret", secret)) if value in text]
        found = SIGNATURE.search(text)
        leaks += [f"signature or Authorization value ({found.group(0)}...)"] if found else []
        assert leaks == [], f"dtool --debug {args[1]} prints: {', '.join(leaks)}"

    checks = []
    for args in (
        ("--debug", "ls", f"s3://{bucket}"),
        ("--debug", "cp", "-q", str(local), f"s3://{bucket}"),
    ):
        result = dtool.run(*args, check=False)
        checks.append(partial(clean, result.stdout + result.stderr, args))
    expect(*checks)


# -- 10. stale partial downloads -----------------------------------------------------------------


def test_stale_part_file_is_removed(
    dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    uri = make_dataset(s3, bucket, tmp_path, files={"hello.txt": GENUINE, "b.txt": b"b\n"})
    cached = Path(dtool("item", "fetch", uri, identifier("hello.txt")).strip())
    stale = cached.parent / f"{cached.name}.crash1.part"
    stale.write_bytes(GENUINE[:3])
    hour_ago = time.time() - 3600
    os.utime(stale, (hour_ago, hour_ago))
    cached.unlink()
    result, out = cp_out(dtool, uri, tmp_path)
    no_traceback(result)
    assert result.returncode == 0, result.stderr
    assert (out / "ds" / "data" / "hello.txt").read_bytes() == GENUINE
    assert not stale.exists(), "a stale .part file survived a successful download"
