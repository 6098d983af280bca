"""Local sources that are no readable regular file (issue 19): refused up front, in one line.

A FIFO, a device, an unreadable file, a dangling symbolic link and a symbolic link loop, as an
item of a local dataset copied to S3 (``dtool s3 cp``, ``dtool cp``, :func:`copy`), as a file
added to a proto dataset (``dtool add item``, ``put_item``) and below a source directory
(:func:`create_dataset`). Where the check runs before the dataset is created, the bucket stays
empty. The tests run as root, who reads every file: the unreadable cases run in a subprocess
without the capabilities that let root ignore file permissions. Every subprocess has a timeout,
so that a regression that blocks on a FIFO fails instead of hanging.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dtoolcore
import pytest

from dtool_s3_core import copy, create_dataset
from dtool_s3_core._dataset import localfiles
from dtool_s3_core.api import iter_files
from dtool_s3_core.errors import LocalFileError, ObjectNotFound
from tests.conftest import VENV_BIN, Dtool, bucket_env, make_source_dataset, use_server
from tests.core.test_bad_input import dtool_refusal, error_line, frozen_datasets, objects
from tests.support.servers import S3Server

#: Runs a command without the capabilities that let root read and search any file.
NO_ROOT_READ = [
    "setpriv",
    "--inh-caps=-dac_override,-dac_read_search",
    "--bounding-set=-dac_override,-dac_read_search",
]
TIMEOUT = 60

SPECIAL = "dtool items are regular files: replace it with one, or leave it out"
LINK = "point the link at a regular file, or remove it"
UNREADABLE = "make it readable (e.g. chmod u+r), or leave it out"


@pytest.fixture
def s3(moto: S3Server) -> S3Server:
    """moto: what a local file is does not depend on the server."""
    return moto


@pytest.fixture(autouse=True)
def no_hang() -> Iterator[None]:
    """Fail an in-process test that blocks (e.g. opening a FIFO) instead of hanging the run."""

    def blocked(signum: int, frame: object) -> None:
        raise TimeoutError(f"the test blocked for {TIMEOUT} seconds")

    previous = signal.signal(signal.SIGALRM, blocked)
    signal.alarm(TIMEOUT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def fifo(path: Path) -> str:
    os.mkfifo(path)
    return f"it is a named pipe (FIFO), not a regular file; {SPECIAL}"


def dangling(path: Path) -> str:
    path.symlink_to("nowhere")
    return f"it is a symbolic link to 'nowhere', which does not exist; {LINK}"


def loop(path: Path) -> str:
    path.symlink_to(path.name)
    return f"it is a symbolic link that loops (too many levels of links); {LINK}"


def unreadable(path: Path) -> str:
    path.write_text("secret\n")
    path.chmod(0)
    return f"it cannot be read (permission denied); {UNREADABLE}"


ODD = {"fifo": fifo, "dangling": dangling, "loop": loop, "unreadable": unreadable}
#: The cases an in-process test can make (root reads an unreadable file).
IN_PROCESS = ["fifo", "dangling", "loop"]


def can_drop_root_read() -> bool:
    if shutil.which("setpriv") is None:
        return False
    probe = subprocess.run(
        [*NO_ROOT_READ, "true"], capture_output=True, timeout=TIMEOUT, check=False
    )
    return probe.returncode == 0


def run(dtool: Dtool, *args: str, unprivileged: bool = False) -> subprocess.CompletedProcess[str]:
    """Run our dtool like ``dtool.run``, with a short timeout, optionally unable to read 0000."""
    if unprivileged and not can_drop_root_read():
        pytest.skip("setpriv cannot drop the capabilities that let root read any file")
    prefix = NO_ROOT_READ if unprivileged else []
    env = {**os.environ, **dtool.env, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [*prefix, str(VENV_BIN / "dtool"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def odd_local_dataset(where: Path, kind: str) -> tuple[Path, Path, str]:
    """A frozen local dataset whose item ``hello.txt`` was turned into ``kind`` afterwards.

    Returns the dataset, the item's file and the message's end (after ``cannot upload <path>:``).
    """
    dataset = make_source_dataset(where)
    item = dataset / "data" / "hello.txt"
    item.unlink()
    return dataset, item, ODD[kind](item)


# -- local dataset -> S3 -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(ODD))
def test_s3_cp_refuses_an_odd_item_before_writing(
    dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path, kind: str
) -> None:
    dataset, item, problem = odd_local_dataset(tmp_path / "local", kind)
    result = run(
        dtool, "s3", "cp", str(dataset), f"s3://{bucket}", unprivileged=kind == "unreadable"
    )
    assert error_line(result) == f"Error: cannot upload {item}: {problem}"
    assert result.returncode == 1
    assert objects(s3, bucket) == {}


@pytest.mark.parametrize("kind", list(ODD))
def test_dtool_cp_refuses_an_odd_item(
    dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path, kind: str
) -> None:
    dataset, item, problem = odd_local_dataset(tmp_path / "local", kind)
    result = run(dtool, "cp", str(dataset), f"s3://{bucket}", unprivileged=kind == "unreadable")
    # dtoolcore has created the proto dataset before it hands over the first item.
    assert error_line(result) == f"Error: cannot upload {item}: {problem}"
    assert result.returncode == 1
    assert frozen_datasets(s3, bucket) == []


@pytest.mark.parametrize("kind", IN_PROCESS)
def test_copy_refuses_an_odd_item_before_writing(
    s3: S3Server, bucket: str, tmp_path: Path, kind: str
) -> None:
    dataset, item, problem = odd_local_dataset(tmp_path / "local", kind)
    with use_server(s3, bucket, tmp_path), pytest.raises(LocalFileError) as info:
        copy(str(dataset), f"s3://{bucket}")
    assert str(info.value) == f"cannot upload {item}: {problem}"
    assert objects(s3, bucket) == {}


# -- a file added to a proto dataset -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["fifo", "device", "directory"])
def test_add_item_refuses_a_special_file(
    dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path, kind: str
) -> None:
    uri = dtool.create("ds", f"s3://{bucket}")
    before = objects(s3, bucket)
    path = tmp_path / "odd"
    if kind == "fifo":
        problem = f"a named pipe (FIFO), not a regular file; {SPECIAL}"
        os.mkfifo(path)
    elif kind == "device":
        path, problem = Path("/dev/null"), f"a character device, not a regular file; {SPECIAL}"
    else:
        problem = "a directory, not a regular file; add the files in it instead"
        path.mkdir()
    result = run(dtool, "add", "item", str(path), uri, "item.txt")
    assert error_line(result) == f"Error: cannot upload {path}: it is {problem}"
    assert result.returncode == 1
    assert objects(s3, bucket) == before


@pytest.mark.parametrize("kind", ["dangling", "loop", "unreadable"])
def test_add_item_of_a_broken_link_or_unreadable_file_is_dtools_usage_error(
    dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path, kind: str
) -> None:
    """dtool's own argument check (click.Path) refuses these before the broker is asked."""
    uri = dtool.create("ds", f"s3://{bucket}")
    before = objects(s3, bucket)
    path = tmp_path / "odd"
    ODD[kind](path)
    result = run(dtool, "add", "item", str(path), uri, unprivileged=kind == "unreadable")
    refused = "is not readable" if kind == "unreadable" else "does not exist"
    assert f"Invalid value for 'INPUT_FILE': Path '{path}' {refused}." in dtool_refusal(result)
    assert objects(s3, bucket) == before


@pytest.mark.parametrize("kind", IN_PROCESS)
def test_put_item_refuses_an_odd_file_at_once(
    s3: S3Server, bucket: str, tmp_path: Path, kind: str
) -> None:
    """The broker's put_item, as dtoolcore's copy and scripts call it: no hang, no queued work."""
    path = tmp_path / "odd"
    problem = ODD[kind](path)
    with use_server(s3, bucket, tmp_path):
        proto = dtoolcore.create_proto_dataset("ds", f"s3://{bucket}")
        before = objects(s3, bucket)
        with pytest.raises(LocalFileError) as info:
            proto.put_item(str(path), "odd")
        proto.freeze()
    assert str(info.value) == f"cannot upload {path}: {problem}"
    assert [key for key in objects(s3, bucket) if key not in before and "/data/" in key] == []


# -- create_dataset and iter_files ---------------------------------------------------------------


@pytest.mark.parametrize("kind", IN_PROCESS)
def test_create_dataset_refuses_an_odd_file_below_source_dir(
    s3: S3Server, bucket: str, tmp_path: Path, kind: str
) -> None:
    source = tmp_path / "source"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_text("a\n")
    problem = ODD[kind](source / "sub" / "odd")
    with use_server(s3, bucket, tmp_path), pytest.raises(LocalFileError) as info:
        create_dataset("ds", f"s3://{bucket}", source_dir=source)
    assert str(info.value) == f"cannot upload {source / 'sub' / 'odd'}: {problem}"
    assert objects(s3, bucket) == {}
    with pytest.raises(LocalFileError):
        iter_files(source)


def test_create_dataset_refuses_a_device_given_as_a_file(
    s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    (tmp_path / "a.txt").write_text("a\n")
    with use_server(s3, bucket, tmp_path), pytest.raises(LocalFileError) as info:
        create_dataset(
            "ds", f"s3://{bucket}", files={"a.txt": tmp_path / "a.txt", "null": "/dev/null"}
        )
    assert str(info.value) == (
        f"cannot upload /dev/null: it is a character device, not a regular file; {SPECIAL}"
    )
    assert objects(s3, bucket) == {}


def test_create_dataset_names_the_first_few_and_counts_the_rest(
    s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for number in range(6):
        os.mkfifo(source / f"pipe{number}")
    (source / "dir").mkdir()
    (source / "linked").symlink_to("dir")
    with use_server(s3, bucket, tmp_path), pytest.raises(LocalFileError) as info:
        create_dataset("ds", f"s3://{bucket}", source_dir=source)
    pipe = "is a named pipe (FIFO), not a regular file"
    assert str(info.value) == (
        f"cannot upload {source / 'linked'}: it is a symbolic link to a directory, which is not "
        "followed; give that directory its own dataset, or replace the link with a copy "
        f"(also: {source / 'pipe0'} {pipe}; {source / 'pipe1'} {pipe}; {source / 'pipe2'} "
        f"{pipe}; and 3 more)"
    )
    assert objects(s3, bucket) == {}


def test_a_missing_file_is_still_not_found(s3: S3Server, bucket: str, tmp_path: Path) -> None:
    with use_server(s3, bucket, tmp_path), pytest.raises(ObjectNotFound) as info:
        create_dataset("ds", f"s3://{bucket}", files={"gone": tmp_path / "gone"})
    assert str(info.value) == f"local file not found: {tmp_path / 'gone'}"
    assert objects(s3, bucket) == {}


CREATE = """
import sys
from collections.abc import Iterator
from dtool_s3_core import create_dataset
from dtool_s3_core.errors import LocalFileError
try:
    create_dataset("ds", sys.argv[1], source_dir=sys.argv[2])
except LocalFileError as exc:
    print(exc)
    sys.exit(3)
"""


@pytest.mark.parametrize("what", ["file", "directory"])
def test_create_dataset_refuses_what_cannot_be_read(
    dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path, what: str
) -> None:
    if not can_drop_root_read():
        pytest.skip("setpriv cannot drop the capabilities that let root read any file")
    source = tmp_path / "source"
    source.mkdir()
    (source / "a.txt").write_text("a\n")
    if what == "file":
        odd, problem = source / "secret", unreadable(source / "secret")
    else:
        odd = source / "closed"
        odd.mkdir()
        (odd / "inside.txt").write_text("b\n")
        odd.chmod(0)
        problem = (
            "it is a directory that cannot be read (permission denied); make it readable "
            "(e.g. chmod u+rx), or leave it out"
        )
    env = {**os.environ, **bucket_env(s3, bucket), "HOME": dtool.env["HOME"]}
    result = subprocess.run(
        [*NO_ROOT_READ, sys.executable, "-c", CREATE, f"s3://{bucket}", str(source)],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 3, result.stderr
    assert result.stdout == f"cannot upload {odd}: {problem}\n"
    assert objects(s3, bucket) == {}


def test_iter_files_lists_regular_files_and_links_to_them(tmp_path: Path) -> None:
    (tmp_path / "b" / "c").mkdir(parents=True)
    (tmp_path / "b" / "c" / "d.txt").write_text("d\n")
    (tmp_path / "a.txt").write_text("a\n")
    (tmp_path / "link.txt").symlink_to("a.txt")
    assert iter_files(tmp_path) == {
        "a.txt": tmp_path / "a.txt",
        "b/c/d.txt": tmp_path / "b" / "c" / "d.txt",
        "link.txt": tmp_path / "link.txt",
    }


def test_a_file_swapped_for_a_fifo_after_the_check_does_not_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The open itself never waits for a FIFO's writer, and what it opened is checked again."""
    regular = tmp_path / "regular"
    regular.write_text("r\n")
    os.mkfifo(tmp_path / "pipe")
    pipe, looked_at, real_stat = tmp_path / "pipe", os.stat(regular), os.stat

    def stat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        return looked_at if path == pipe else real_stat(path, *args, **kwargs)

    # The check sees a regular file; the open then meets the FIFO that took its place.
    with monkeypatch.context() as patch, pytest.raises(LocalFileError) as info:
        patch.setattr(os, "stat", stat)
        localfiles.open_local(pipe)
    assert str(info.value) == (
        f"cannot upload {tmp_path / 'pipe'}: it is a named pipe (FIFO), not a regular file; "
        f"{SPECIAL}"
    )
