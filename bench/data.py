"""Synthetic inputs: directories of random files and local frozen datasets made from them."""

from __future__ import annotations

import os
from pathlib import Path

import dtoolcore

MiB = 1024 * 1024


def make_files(root: Path, count: int, size: int, fanout: int = 10) -> Path:
    """Write ``count`` files of ``size`` random bytes, spread over ``fanout`` subdirectories."""
    for index in range(count):
        path = root / f"d{index % fanout:02d}" / f"item-{index:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as out:
            left = size
            while left:
                chunk = min(left, 4 * MiB)
                out.write(os.urandom(chunk))
                left -= chunk
    return root


def local_dataset(source: Path, base: Path, name: str) -> str:
    """Freeze the files under ``source`` into a dataset under ``base`` (dtoolcore's disk broker)."""
    base.mkdir(parents=True, exist_ok=True)
    admin = dtoolcore.generate_admin_metadata(name)
    proto = dtoolcore.generate_proto_dataset(admin, base.as_uri())
    proto.create()
    proto.put_readme("benchmark: synthetic random data\n")
    for path in sorted(source.rglob("*")):
        if path.is_file():
            proto.put_item(str(path), path.relative_to(source).as_posix())
    proto.freeze()
    return str(proto.uri)


def tree_summary(root: Path) -> tuple[int, int]:
    """(number of files, total bytes) below ``root``: a cheap check that a copy really happened."""
    files = [p for p in root.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)
