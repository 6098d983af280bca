#!/usr/bin/env bash
# The main job, end to end, against an embedded loopback S3 server (moto, 127.0.0.1, free port):
# create a local dataset, copy it to S3, list it, verify it, publish it and read it back over HTTP.
set -euo pipefail
cd "$(dirname "$0")/.."
WITH_ORACLE=0 WITH_CEPH=0 bash scripts/bootstrap.sh
exec .venv/bin/python -m dtool_s3_core.demo "$@"
