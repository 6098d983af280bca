#!/usr/bin/env bash
# The benchmark: dtool-s3 0.14.1 vs dtool-s3-core vs plain boto3 on a loopback S3 server;
# prints the table and writes docs/benchmarks.md. Options: see `python -m bench --help`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python -m bench "$@"
