#!/usr/bin/env bash
# The whole test suite: lint, types, pytest against moto, SeaweedFS and Ceph RGW on 127.0.0.1, and
# the wheel smoke test (scripts/wheel-smoke.sh, run beside pytest: it mostly waits on pip).
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
# With arguments (a subset of the tests) or WHEEL_SMOKE=0, the wheel smoke test is skipped.
smoke=
if [ $# = 0 ] && [ "${WHEEL_SMOKE:-1}" = 1 ]; then
  mkdir -p build
  bash scripts/wheel-smoke.sh >build/wheel-smoke.log 2>&1 &
  smoke=$!
fi
status=0
.venv/bin/python -m pytest -n 2 -p no:cacheprovider "$@" || status=$?
if [ -z "$smoke" ]; then
  :
elif wait "$smoke"; then
  tail -1 build/wheel-smoke.log
else
  grep -v "^WARNING: Location" build/wheel-smoke.log | tail -40
  echo "wheel smoke test FAILED (full log: build/wheel-smoke.log)"
  status=1
fi
exit "$status"
