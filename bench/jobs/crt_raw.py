"""The native-engine ceiling: the same files moved with awscrt's S3Client alone, no dtool.

Up to ``--in-flight`` requests at once; small files as single PUTs from memory, files above
the part size with awscrt's own multipart PUT / ranged GET straight from / to disk. Keys are the
files' relative paths under ``prefix`` (downloads take the names from ``names_from``, so no
listing is made). Credentials come from AWS_* variables.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from io import BytesIO
from pathlib import Path

from awscrt import auth, io, s3
from awscrt.http import HttpHeaders, HttpRequest

MiB = 1024 * 1024
PART = 16 * MiB


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("direction", choices=["up", "down"])
    parser.add_argument("endpoint_url")
    parser.add_argument("bucket")
    parser.add_argument("prefix")
    parser.add_argument("local_dir", type=Path)
    parser.add_argument("names_from", type=Path)
    parser.add_argument("--in-flight", type=int, default=64)
    args = parser.parse_args()
    host = args.endpoint_url.split("://", 1)[1].rstrip("/")
    provider = auth.AwsCredentialsProvider.new_static(
        os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
    )
    client = s3.S3Client(
        bootstrap=io.ClientBootstrap.get_or_create_static_default(),
        region="us-east-1",
        tls_mode=s3.S3RequestTlsMode.DISABLED,
        signing_config=s3.create_default_s3_signing_config(
            region="us-east-1", credential_provider=provider
        ),
        part_size=PART,
        throughput_target_gbps=10.0,
    )
    root: Path = args.names_from
    names = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    slots = threading.Semaphore(args.in_flight)
    failures: list[BaseException] = []
    requests = []
    for name in names:
        slots.acquire()
        if failures:
            break
        path = f"/{args.bucket}/{args.prefix}/{name}"
        local = args.local_dir / name
        headers = HttpHeaders([("Host", host)])
        if args.direction == "up":
            size = local.stat().st_size
            headers.add("Content-Length", str(size))
            if size <= PART:
                body = local.read_bytes()
                request = HttpRequest("PUT", path, headers, BytesIO(body))
                kind, send = s3.S3RequestType.DEFAULT, None
            else:
                request = HttpRequest("PUT", path, headers)
                kind, send = s3.S3RequestType.PUT_OBJECT, str(local)
            made = client.make_request(
                type=kind,
                request=request,
                operation_name="PutObject" if send is None else None,
                send_filepath=send,
            )
        else:
            local.parent.mkdir(parents=True, exist_ok=True)
            made = client.make_request(
                type=s3.S3RequestType.GET_OBJECT,
                request=HttpRequest("GET", path, headers),
                recv_filepath=str(local),
            )
        made.finished_future.add_done_callback(lambda f: _done(f, slots, failures))
        requests.append(made)
    for made in requests:
        made.finished_future.exception()
    if failures:
        sys.stderr.write(f"failed: {failures[0]!r}\n")
        return 1
    return 0


def _done(future: object, slots: threading.Semaphore, failures: list[BaseException]) -> None:
    exc = future.exception()  # type: ignore[attr-defined]
    if exc is not None:
        failures.append(exc)
    slots.release()


if __name__ == "__main__":
    sys.exit(main())
