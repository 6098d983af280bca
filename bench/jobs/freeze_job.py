"""Create a proto dataset in S3 with dtoolcore's API, add every file of a directory, freeze it.

Run as a script by the Python of either virtualenv (ours or the dtool-s3 0.14.1 oracle), so it
imports nothing but dtoolcore and the standard library; whichever ``s3`` broker that virtualenv
registers does the work. Prints one JSON line: seconds spent adding items and freezing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import dtoolcore


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("base_uri")
    parser.add_argument("source_dir", type=Path)
    parser.add_argument("--name", default="bench-freeze")
    args = parser.parse_args()
    files = sorted(p for p in args.source_dir.rglob("*") if p.is_file())
    admin = dtoolcore.generate_admin_metadata(args.name)
    proto = dtoolcore.generate_proto_dataset(admin, args.base_uri)
    started = time.perf_counter()
    proto.create()
    proto.put_readme("")
    for path in files:
        proto.put_item(str(path), path.relative_to(args.source_dir).as_posix())
    added = time.perf_counter()
    proto.freeze()
    frozen = time.perf_counter()
    json.dump({"put_s": added - started, "freeze_s": frozen - added}, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
