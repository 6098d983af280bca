#!/usr/bin/env bash
# Idempotent set-up: the project virtualenv (.venv) and the dtool-s3 0.14.1 oracle (.venv-oracle).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
# The editable install is "strict" (a tree of links on sys.path, not an import hook) because
# Snakemake finds its plugins with pkgutil.iter_modules(); that tree lists files, so the stamp
# covers the package files too and a new module re-links.
stamp=.venv/.bootstrap-$( { cat pyproject.toml ci/constraints.txt scripts/bootstrap.sh
  find dtool_s3_core integrations -name '*.py' -o -name py.typed | sort; } | sha1sum | cut -c1-12)
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  # Older checkouts installed the integrations as distributions of their own.
  .venv/bin/python -m pip uninstall -q -y snakemake-storage-plugin-dtool dtool-s3-airflow \
    2>/dev/null || true
  .venv/bin/python -m pip install -q -c ci/constraints.txt \
    --config-settings editable_mode=strict -e ".[test]"
  rm -f .venv/.bootstrap-*; touch "$stamp"
fi
oracle_stamp=.venv-oracle/.ok-$(sha1sum ci/oracle-requirements.txt | cut -c1-12)
if [ "${WITH_ORACLE:-1}" = 1 ] && [ ! -f "$oracle_stamp" ]; then
  rm -rf .venv-oracle; "$PY" -m venv .venv-oracle
  .venv-oracle/bin/python -m pip install -q --upgrade pip
  .venv-oracle/bin/python -m pip install -q -r ci/oracle-requirements.txt
  touch "$oracle_stamp"
fi
if [ "${WITH_CEPH:-1}" = 1 ]; then bash scripts/install-ceph.sh; fi
