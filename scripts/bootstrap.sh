#!/usr/bin/env bash
# Idempotent set-up: the project virtualenv (.venv) and the dtool-s3 0.14.1 oracle (.venv-oracle).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
stamp=.venv/.bootstrap-$(cat pyproject.toml integrations/*/pyproject.toml scripts/bootstrap.sh \
  | sha1sum | cut -c1-12)
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[test]" -e integrations/snakemake -e integrations/airflow
  rm -f .venv/.bootstrap-*; touch "$stamp"
fi
oracle_stamp=.venv-oracle/.ok-$(sha1sum scripts/bootstrap.sh | cut -c1-12)
if [ "${WITH_ORACLE:-1}" = 1 ] && [ ! -f "$oracle_stamp" ]; then
  rm -rf .venv-oracle; "$PY" -m venv .venv-oracle
  .venv-oracle/bin/python -m pip install -q --upgrade pip
  .venv-oracle/bin/python -m pip install -q "dtool-s3==0.14.1" "dtoolcore==3.19.0" \
    "dtool-cli==0.7.1" "dtool-create==0.23.4" "dtool-info==0.16.2" "dtool-http==0.5.2" \
    "dtool-annotation==0.1.1" "dtool-tag==0.1.1"
  # Old pkg_resources cannot match ruamel_yaml's dist-info to "ruamel.yaml", so dtool-create's
  # commands would not load; 80 warns on every command.
  .venv-oracle/bin/python -m pip install -q "setuptools>=70,<80"
  touch "$oracle_stamp"
fi
if [ "${WITH_CEPH:-1}" = 1 ]; then bash scripts/install-ceph.sh; fi
