#!/usr/bin/env bash
# The whole test suite: lint, types, and pytest against moto and SeaweedFS on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/ruff check dtool_s3_core tests bench
.venv/bin/ruff format --check dtool_s3_core tests bench
.venv/bin/mypy dtool_s3_core
exec .venv/bin/python -m pytest -n 2 -p no:cacheprovider "$@"
