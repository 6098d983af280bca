#!/usr/bin/env bash
# The whole test suite: lint, types, pytest against moto, SeaweedFS and Ceph RGW on 127.0.0.1, and
# the wheel smoke test and the fresh-venv install matrix (scripts/wheel-smoke.sh,
# scripts/install-matrix.sh, run beside pytest: they mostly wait on pip).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
src="dtool_s3_core integrations/snakemake/snakemake_storage_plugin_dtool integrations/airflow/dtool_s3_airflow"
# shellcheck disable=SC2086
.venv/bin/ruff check $src tests bench examples
# shellcheck disable=SC2086
.venv/bin/ruff format --check $src tests bench examples
# shellcheck disable=SC2086
.venv/bin/mypy $src
# With arguments (a subset of the tests) or WHEEL_SMOKE=0, the wheel smoke test and the install
# matrix are skipped. They run one after the other beside pytest: both mostly wait on pip.
smoke=
if [ $# = 0 ] && [ "${WHEEL_SMOKE:-1}" = 1 ]; then
  mkdir -p build
  (
    failed=0
    bash scripts/wheel-smoke.sh >build/wheel-smoke.log 2>&1 || failed=1
    bash scripts/install-matrix.sh >build/install-matrix.log 2>&1 || failed=$((failed + 2))
    exit "$failed"
  ) &
  smoke=$!
fi
status=0
.venv/bin/python -m pytest -n 2 -p no:cacheprovider "$@" || status=$?
if [ -n "$smoke" ]; then
  failed=0
  wait "$smoke" || failed=$?
  if [ $((failed & 1)) = 0 ]; then
    tail -1 build/wheel-smoke.log
  else
    grep -v "^WARNING: Location" build/wheel-smoke.log | tail -40
    echo "wheel smoke test FAILED (full log: build/wheel-smoke.log)"
    status=1
  fi
  if [ $((failed & 2)) = 0 ]; then
    cat build/install-matrix.log
  else
    grep -v "^WARNING: Location" build/install-matrix.log | tail -60
    echo "install matrix FAILED (full log: build/install-matrix.log; pip's: build/install-matrix/)"
    status=1
  fi
fi
exit "$status"
