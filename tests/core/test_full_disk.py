"""A full disk while copying a dataset to a local directory (issue 19, part 8).

Whatever write fails (an item, the README, the manifest, the admin metadata of a new dataset),
``dtool s3 cp`` ends with one line that names the directory and the fix, exits 1, and leaves a
proto dataset (never a manifest under admin metadata that says ``dataset``) that
``dtool s3 cp --resume`` finishes once there is room. The disk fills up for real: a file size
limit (``ulimit -f``; writes past it fail with EFBIG) lets the items fit while the manifest or
README does not, and a small tmpfs (root only) gives ENOSPC. The server does not matter: moto.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dtool_s3_core._dataset import cache
from dtool_s3_core._format.keys import identifier
from tests.conftest import Dtool
from tests.core.test_bad_input import error_line
from tests.core.test_hostile import make_dataset, uuid_of
from tests.support.servers import S3Server

KiB = 1024
# SIGXFSZ would kill dtool at the limit; ignored (which survives the exec), the write fails with
# EFBIG. An exec wrapper rather than preexec_fn: the test process has threads.
_WITH_FILE_SIZE_LIMIT = (
    "import os, resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
    "limit = int(sys.argv[1]); resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)); "
    "os.execv(sys.argv[2], sys.argv[2:])"
)


@pytest.fixture
def s3(moto: S3Server) -> S3Server:
    """The server does not matter here: moto, for ``bucket`` and ``dtool`` as well."""
    return moto


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs, unmounted afterwards; skipped where mounting is not allowed."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)],
        capture_output=True,
        timeout=30,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], timeout=30, check=True)


def fill(disk: Path) -> Path:
    """Fill the tmpfs up with one file; return it."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * (4 * KiB))
        except OSError:
            pass
    return filler


def grow(disk: Path) -> None:
    """Make room on the tmpfs, as freeing space would."""
    subprocess.run(["mount", "-o", "remount,size=16m", str(disk)], timeout=30, check=True)


def with_file_size_limit(dtool: Dtool, limit: int, *args: str) -> subprocess.CompletedProcess[str]:
    env = dtool.environment()
    wrapper = [sys.executable, "-c", _WITH_FILE_SIZE_LIMIT, str(limit)]
    return subprocess.run(
        [*wrapper, str(dtool.bin_dir / "dtool"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def advice(uri: str, base: Path) -> str:
    return f"then finish the copy with 'dtool s3 cp --resume {uri} {base}'"


def assert_proto(copy: Path) -> None:
    """The copy is a proto dataset that nothing can take for a complete one."""
    assert json.loads((copy / ".dtool" / "dtool").read_text())["type"] == "protodataset"
    assert not (copy / ".dtool" / "manifest.json").exists()
    assert list(copy.rglob("*.part")) == []


def assert_finished_by_resume(dtool: Dtool, uri: str, base: Path) -> None:
    copied = dtool("s3", "cp", "--resume", "-q", uri, str(base)).strip()
    assert "All good" in dtool("verify", "-f", copied)
    admin = json.loads((base / "ds" / ".dtool" / "dtool").read_text())
    assert admin["type"] == "dataset"


# -- the file size limit: the items fit, a document does not -------------------------------------


@pytest.mark.parametrize("what", ["manifest", "readme", "item"])
def test_file_size_limit(
    dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path, what: str
) -> None:
    limit = 64 * KiB
    if what == "manifest":
        # ~300 bytes of manifest per item: 256 items make a manifest of ~80 KiB.
        files = {f"{'d' * 150}/{n:04d}.txt": f"{n}\n".encode() for n in range(256)}
    else:
        files = {"a.txt": b"alpha\n", "big.bin": os.urandom(100 * KiB if what == "item" else 10)}
    uri = make_dataset(s3, bucket, tmp_path, files=files)
    if what == "readme":
        readme = "---\n" + "notes: " + "x" * (100 * KiB) + "\n"
        s3.client().put_object(Bucket=bucket, Key=f"{uuid_of(uri)}/README.yml", Body=readme)
    base = tmp_path / "out"
    base.mkdir()
    result = with_file_size_limit(dtool, limit, "s3", "cp", uri, str(base))
    copy = base / "ds"
    if what == "item":
        line = error_line(result)
        prefix = f"Error: cannot write to {copy / 'data'} while downloading {uri}/data/"
        assert line.startswith(prefix), line
        ident = line[len(prefix) : len(prefix) + 40]
        assert line == (
            f"{prefix}{ident}: the file size limit is exceeded; raise the limit (ulimit -f), "
            f"{advice(uri, base)}"
        )
    else:
        assert error_line(result) == (
            f"Error: cannot write to {copy} while copying {uri}: the file size limit is "
            f"exceeded; raise the limit (ulimit -f), {advice(uri, base)}"
        )
    assert_proto(copy)
    if what == "manifest":
        # The README was written: what failed came after it.
        assert (copy / "README.yml").read_text() == ""
    assert_finished_by_resume(dtool, uri, base)


# -- a full tmpfs ---------------------------------------------------------------------------------


def test_full_disk_while_downloading_an_item(
    dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path, small_disk: Path
) -> None:
    uri = make_dataset(s3, bucket, tmp_path, files={"big.bin": os.urandom(1536 * KiB)})
    result = dtool.run("s3", "cp", uri, str(small_disk), check=False)
    assert error_line(result) == (
        f"Error: cannot write to {small_disk / 'ds' / 'data'} while downloading "
        f"{uri}/data/{identifier('big.bin')}: the disk is full; free some space there, "
        f"{advice(uri, small_disk)}"
    )
    assert_proto(small_disk / "ds")
    grow(small_disk)
    assert_finished_by_resume(dtool, uri, small_disk)


def test_full_disk_while_creating_the_copy(
    dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path, small_disk: Path
) -> None:
    """The admin metadata of the new dataset cannot be written: nothing of the copy stays."""
    uri = make_dataset(s3, bucket, tmp_path)
    filler = fill(small_disk)
    result = dtool.run("s3", "cp", uri, str(small_disk), check=False)
    assert error_line(result) == (
        f"Error: cannot write to {small_disk / 'ds'} while copying {uri}: the disk is full; "
        f"free some space there, {advice(uri, small_disk)}"
    )
    assert list(small_disk.iterdir()) == [filler]
    filler.unlink()
    assert_finished_by_resume(dtool, uri, small_disk)


def test_full_disk_under_dtool_cp(
    dtool: Dtool, s3: S3Server, bucket: str, tmp_path: Path, small_disk: Path
) -> None:
    """dtoolcore's copy: the item fits in the download cache, not in the destination."""
    uri = make_dataset(s3, bucket, tmp_path, files={"big.bin": os.urandom(1536 * KiB)})
    result = dtool.run("cp", uri, str(small_disk), check=False)
    assert error_line(result) == (
        f"Error: cannot write to {small_disk} while copying {uri}: the disk is full; free some "
        f"space there, then finish the copy with 'dtool cp --resume {uri} {small_disk}'"
    )
    assert json.loads((small_disk / "ds" / ".dtool" / "dtool").read_text())["type"] == (
        "protodataset"
    )
    grow(small_disk)
    dtool("cp", "--resume", uri, str(small_disk))
    assert "All good" in dtool("verify", "-f", str(small_disk / "ds"))


def test_a_full_cache_disk_costs_only_the_verified_sidecar(
    small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The entry is complete and verified: it is served, and hashed again next time."""
    entry = small_disk / "entry.txt"
    entry.write_bytes(b"hello\n")
    fill(small_disk)
    md5 = hashlib.md5(b"hello\n").hexdigest()
    cache.remember(entry, md5)
    assert "cannot record that" in caplog.text
    assert sorted(p.name for p in small_disk.iterdir()) == ["entry.txt", "filler"]
    assert cache.is_valid(entry, md5, 6)
