#!/usr/bin/env bash
# The main job, end to end, against embedded loopback S3 servers (moto, 127.0.0.1, free ports):
# 1. dtool CLI: create a local dataset, copy it to S3, list, verify, publish, read it back over HTTP;
# 2. Snakemake: a workflow reads a frozen dataset and writes its results into a new, frozen one;
# 3. Airflow: a DAG creates, copies (second endpoint), publishes, lists and waits for datasets.
set -euo pipefail
cd "$(dirname "$0")/.."
WITH_ORACLE=0 WITH_CEPH=0 bash scripts/bootstrap.sh
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # the examples borrow the loopback server from tests/support
.venv/bin/python -m examples.demo "$@"
.venv/bin/python integrations/snakemake/example/run.py
.venv/bin/python integrations/airflow/example/run.py
