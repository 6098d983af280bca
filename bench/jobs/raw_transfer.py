"""The raw-transfer limit: the same bytes moved with plain boto3, no dtool bookkeeping.

Small files go through a thread pool of ``put_object``/``get_object`` calls; large files through
boto3's managed transfers (``upload_file``/``download_file``, what ``aws s3 cp`` uses), both with
the concurrency and part size dtool-s3-core defaults to. Credentials come from AWS_* variables.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

MiB = 1024 * 1024


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("direction", choices=["up", "down"])
    parser.add_argument("endpoint_url")
    parser.add_argument("bucket")
    parser.add_argument("prefix")
    parser.add_argument("local_dir", type=Path)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--managed", action="store_true", help="multipart managed transfers")
    args = parser.parse_args()
    client = boto3.client(
        "s3",
        endpoint_url=args.endpoint_url,
        config=Config(max_pool_connections=args.concurrency, s3={"addressing_style": "path"}),
    )
    transfer = TransferConfig(
        multipart_threshold=64 * MiB, multipart_chunksize=16 * MiB, max_concurrency=args.concurrency
    )
    root: Path = args.local_dir
    if args.direction == "up":
        jobs = [(p, f"{args.prefix}/{p.relative_to(root).as_posix()}") for p in root.rglob("*")]
        jobs = [(p, key) for p, key in jobs if p.is_file()]
    else:
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=args.bucket, Prefix=args.prefix + "/"
        )
        keys = [obj["Key"] for page in pages for obj in page.get("Contents", [])]
        jobs = [(root / key[len(args.prefix) + 1 :], key) for key in keys]
        for path, _ in jobs:
            path.parent.mkdir(parents=True, exist_ok=True)

    def move(job: tuple[Path, str]) -> None:
        path, key = job
        if args.managed and args.direction == "up":
            client.upload_file(str(path), args.bucket, key, Config=transfer)
        elif args.managed:
            client.download_file(args.bucket, key, str(path), Config=transfer)
        elif args.direction == "up":
            client.put_object(Bucket=args.bucket, Key=key, Body=path.read_bytes())
        else:
            path.write_bytes(client.get_object(Bucket=args.bucket, Key=key)["Body"].read())

    workers = 1 if args.managed else args.concurrency
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(move, jobs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
