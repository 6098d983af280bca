#!/usr/bin/env bash
# The whole test suite: lint, types, and pytest against moto and SeaweedFS on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
src="dtool_s3_core integrations/snakemake/snakemake_storage_plugin_dtool integrations/airflow/dtool_s3_airflow"
# shellcheck disable=SC2086
.venv/bin/ruff check $src tests bench
# shellcheck disable=SC2086
.venv/bin/ruff format --check $src tests bench
# shellcheck disable=SC2086
.venv/bin/mypy $src
exec .venv/bin/python -m pytest -n 2 -p no:cacheprovider "$@"
