"""Item names a local disk cannot hold (issue 19, part 7).

A legal 255-byte name downloads (temporary files have short names of their own). A name over
255 bytes, or an item that is also a directory of others (``x`` and ``x/y``), is refused where it
would enter a bucket through dtool-s3-core: at once for one item, at the latest at the freeze
for a set. A dataset with such names written by other tools is refused by every copy before
anything is written, in one line; ``dtool item fetch`` still reads its items (the download
cache names entries by identifier). The server does not matter here: moto only.
"""

from __future__ import annotations

import json
import time
import uuid as uuidlib
from pathlib import Path

import pytest

from dtool_s3_core import copy_dataset, create_dataset
from dtool_s3_core._format.keys import identifier
from dtool_s3_core._format.validate import clash, local_names_problem
from dtool_s3_core.errors import ConfigurationError, DatasetStateError
from tests.conftest import Dtool, use_server
from tests.core.test_bad_input import error_line, objects
from tests.core.test_hostile import make_dataset, put_item, set_items, uuid_of
from tests.support.servers import S3Server

#: 250 bytes of UTF-8 in 126 characters: legal everywhere, and longer than NAME_MAX minus the
#: random part and ".part" that temporary files used to add to it.
LEGAL = "\u00e4" * 123 + ".txt"
TOO_LONG = "b" * 304
SHOWN_TOO_LONG = "'" + "b" * 117 + "...'"


@pytest.fixture
def s3(moto: S3Server) -> S3Server:
    """The server does not matter here: moto, for ``bucket`` and ``dtool`` as well."""
    return moto


def made_elsewhere(s3: S3Server, bucket: str, tmp_path: Path, relpaths: list[str]) -> str:
    """A frozen dataset whose manifest and item objects hold ``relpaths``, written with boto3
    as another tool could; return its URI."""
    uri = make_dataset(s3, bucket, tmp_path, name="elsewhere")
    uuid = uuid_of(uri)
    items = {}
    for relpath in relpaths:
        ident = identifier(relpath)
        items[ident] = put_item(s3, bucket, uuid, ident, relpath, f"{relpath[:8]}\n".encode())
    set_items(s3, bucket, uuid, items)
    return uri


def problem_of(case: str) -> str:
    if case == "long":
        return (
            f"it has an item {SHOWN_TOO_LONG} with a name of 304 bytes, over the 255 that local "
            "file systems allow"
        )
    return "it has items 'x' and 'x/y': 'x' cannot be both a file and a directory on a local disk"


RELPATHS = {"long": ["ok.txt", TOO_LONG], "clash": ["x", "x/y", "z"]}


# -- legal names ---------------------------------------------------------------------------------


def test_a_255_byte_name_downloads(dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path) -> None:
    name = "n" * 251 + ".txt"
    assert len(LEGAL.encode()) == 250 and len(name.encode()) == 255
    files = {LEGAL: b"umlauts\n", f"d/{name}": b"long\n"}
    uri = make_dataset(s3, bucket, tmp_path, files=files)
    (tmp_path / "s3cp").mkdir()
    (tmp_path / "cp").mkdir()
    copied = dtool("s3", "cp", "-q", uri, str(tmp_path / "s3cp")).strip()
    assert "All good" in dtool("verify", "-f", copied)
    assert (tmp_path / "s3cp" / "ds" / "data" / LEGAL).read_bytes() == b"umlauts\n"
    dtool("cp", "-q", uri, str(tmp_path / "cp"))
    assert (tmp_path / "cp" / "ds" / "data" / "d" / name).read_bytes() == b"long\n"
    assert list(tmp_path.rglob("*.part")) == []


# -- refused on the way in -----------------------------------------------------------------------


def test_a_name_over_255_bytes_is_refused_by_add_item(
    dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    (tmp_path / "a.txt").write_text("alpha\n")
    proto = dtool.create("proto", f"s3://{bucket}")
    before = objects(s3, bucket)
    relpath = "d/" + "n" * 256
    result = dtool.run("add", "item", str(tmp_path / "a.txt"), proto, relpath, check=False)
    assert error_line(result) == (
        f"Error: item relpath 'd/{'n' * 115}...' has a name of 256 bytes: the limit is 255 "
        "(local file systems); shorten it"
    )
    assert objects(s3, bucket) == before


def test_names_are_checked_before_create_dataset_writes(
    s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    (tmp_path / "a.txt").write_text("alpha\n")
    a = tmp_path / "a.txt"
    with use_server(s3, bucket, tmp_path):
        with pytest.raises(ConfigurationError) as info:
            create_dataset("ds", f"s3://{bucket}", files={"x": a, "x/y": a, "w": a})
        assert str(info.value) == (
            "item relpaths 'x' and 'x/y' clash: 'x' cannot be both a file and a directory on a "
            "local disk; rename one of them"
        )
        with pytest.raises(ConfigurationError, match="has a name of 258 bytes: the limit is 255"):
            create_dataset("ds", f"s3://{bucket}", files={"\u00e9" * 129: a})
    assert objects(s3, bucket) == {}


@pytest.mark.parametrize("case", ["clash", "long"])
def test_freeze_refuses_items_a_disk_cannot_hold(
    dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path, case: str
) -> None:
    """'x' and 'x/y' added one at a time, or a long name added by another tool."""
    (tmp_path / "a.txt").write_text("alpha\n")
    proto = dtool.create("proto", f"s3://{bucket}")
    uuid = uuid_of(proto)
    for relpath in RELPATHS[case]:
        if len(relpath) > 255:
            put_item(s3, bucket, uuid, identifier(relpath), relpath, b"alpha\n")
        else:
            dtool("add", "item", str(tmp_path / "a.txt"), proto, relpath)
    before = objects(s3, bucket)
    result = dtool.run("freeze", proto, check=False)
    assert error_line(result) == (
        f"Error: cannot freeze {proto}: {problem_of(case)}; put the items into a new dataset "
        "under other names"
    )
    # Still a proto dataset, and no freeze marker left for writers to wait on.
    assert objects(s3, bucket) == before
    admin = json.loads(s3.client().get_object(Bucket=bucket, Key=f"{uuid}/dtool")["Body"].read())
    assert admin["type"] == "protodataset"
    started = time.monotonic()
    dtool("add", "item", str(tmp_path / "a.txt"), proto, "more.txt")
    assert time.monotonic() - started < 30


# -- refused on the way out ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "case"),
    [
        pytest.param("s3 cp", "long", id="s3-cp-long"),
        pytest.param("s3 cp", "clash", id="s3-cp-clash"),
        pytest.param("s3 cp --resume", "long", id="s3-cp-resume-long"),
        pytest.param("s3 cp --resume", "clash", id="s3-cp-resume-clash"),
        pytest.param("cp", "long", id="cp-long"),
        pytest.param("cp", "clash", id="cp-clash"),
        pytest.param("cp --resume", "long", id="cp-resume-long"),
        pytest.param("cp --resume", "clash", id="cp-resume-clash"),
    ],
)
def test_copies_to_disk_refuse_a_dataset_made_elsewhere(
    dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path, case: str, command: str
) -> None:
    uri = made_elsewhere(s3, bucket, tmp_path, RELPATHS[case])
    out = tmp_path / "out"
    out.mkdir()
    result = dtool.run(*command.split(), uri, str(out), check=False)
    assert error_line(result) == f"Error: cannot copy {uri} to {out}: {problem_of(case)}; " + (
        "'dtool item fetch' still reads its items one by one"
    )
    assert list(out.iterdir()) == []
    for relpath in RELPATHS[case]:
        fetched = Path(dtool("item", "fetch", uri, identifier(relpath)).strip())
        assert fetched.read_bytes() == f"{relpath[:8]}\n".encode()


@pytest.mark.parametrize("case", ["clash", "long"])
def test_copies_to_s3_refuse_a_dataset_made_elsewhere(
    dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path, case: str
) -> None:
    uri = made_elsewhere(s3, bucket, tmp_path, RELPATHS[case])
    dest = f"dst-{uuidlib.uuid4().hex[:10]}"
    s3.create_bucket(dest)
    dtool.add_bucket(s3, dest)
    result = dtool.run("s3", "cp", uri, f"s3://{dest}", check=False)
    assert error_line(result) == (
        f"Error: cannot copy {uri} to s3://{dest}/{uuid_of(uri)}: {problem_of(case)}; "
        "'dtool item fetch' still reads its items one by one"
    )
    assert objects(s3, dest) == {}
    with use_server(s3, bucket, tmp_path), pytest.raises(DatasetStateError):
        copy_dataset(uri, str(tmp_path))
    assert [p for p in tmp_path.iterdir() if p.name == "elsewhere"] == []


# -- the checks themselves -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relpaths", "found"),
    [
        (["x", "x-1", "x/y"], ("x", "x/y")),
        (["a/b", "a/b/c/d"], ("a/b", "a/b/c/d")),
        (["x", "xy/z", "x.txt", "y/x"], None),
        (["a/b", "a/c", "b"], None),
    ],
)
def test_clash(relpaths: list[str], found: tuple[str, str] | None) -> None:
    assert clash(relpaths) == found


def test_checking_100k_names_is_cheap() -> None:
    relpaths = [f"dir{n % 100}/sub{n % 7}/file-{n}.dat" for n in range(100_000)]
    started = time.perf_counter()
    assert local_names_problem(relpaths) is None
    assert local_names_problem([*relpaths, "dir5/sub3"]) is not None
    assert time.perf_counter() - started < 2.0
