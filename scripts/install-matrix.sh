#!/usr/bin/env bash
# The README's install lines as a new user runs them: the wheel with [cli] in a fresh venv of each
# of Python 3.11 (required), 3.12 and 3.13, with the venv's own pip and no constraints; every
# dtool command's --help and one s3:// round trip with nothing on stderr; [snakemake] and
# [airflow] on 3.11 and 3.13; dtool-s3 0.14.1 beside. See tests/install_matrix.py.
set -euo pipefail
cd "$(dirname "$0")/.."
work=build/install-matrix
rm -rf "$work"; mkdir -p "$work/dist"
.venv/bin/python -m build -q --wheel --outdir "$work/dist" . >"$work/build.log" 2>&1 \
  || { tail -20 "$work/build.log"; exit 1; }
.venv/bin/python -m tests.install_matrix "$(ls "$work"/dist/dtool_s3_core-*.whl)" "$work"
