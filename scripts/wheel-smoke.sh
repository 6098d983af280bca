#!/usr/bin/env bash
# The wheel as users get it: build it, check it holds no test machinery, install it with every
# extra into a fresh virtualenv as the README says (no constraints), and run the
# README's main job (dtool CLI round trip, Snakemake example, Airflow example DAG) from it, on the
# lowest and the highest dtoolcore the project supports.
set -euo pipefail
cd "$(dirname "$0")/.."
work=build/wheel-smoke
rm -rf "$work"; mkdir -p "$work/dist" "$work/support/tests/support" "$work/support/examples"
.venv/bin/python -m build -q --wheel --outdir "$work/dist" . >"$work/build.log" 2>&1 \
  || { tail -20 "$work/build.log"; exit 1; }
wheel=$(ls "$work"/dist/dtool_s3_core-*.whl)
.venv/bin/python - "$wheel" <<'EOF'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
tops = sorted({n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")})
assert tops == ["dtool_s3_airflow", "dtool_s3_core", "snakemake_storage_plugin_dtool"], tops
unwanted = [n for n in names if any(w in n for w in ("proxy", "testing", "demo", "seaweed", "ceph"))]
assert not unwanted, f"test machinery in the wheel: {unwanted}"
print(f"wheel: {len(names)} files, packages {', '.join(tops)}; no test machinery")
EOF
# The examples borrow the loopback server from tests/support; a copy keeps the checkout's own
# packages off sys.path, so everything else comes from the wheel.
cp tests/__init__.py "$work/support/tests/"
cp tests/support/*.py "$work/support/tests/support/"
cp examples/__init__.py examples/demo.py "$work/support/examples/"
python=${PYTHON:-python3}
"$python" -m venv "$work/venv"
pip() {
  "$work/venv/bin/python" -m pip install -q "$@" >>"$work/pip.log" 2>&1 \
    || { grep -v "^WARNING: Location" "$work/pip.log" | tail -20; exit 1; }
}
pip --upgrade pip
pip "$wheel[all,server]" "dtoolcore==3.17.0"
for dtoolcore in 3.17.0 3.19.0; do
  pip "dtoolcore==$dtoolcore"
  echo "== from the wheel: dtoolcore $dtoolcore, the setuptools the cli extra asks for"
  (
    cd "$work/support"
    export PYTHONPATH="$PWD"
    "../venv/bin/python" -m examples.demo
    if [ "$dtoolcore" = 3.19.0 ]; then
      "../venv/bin/python" ../../../integrations/snakemake/example/run.py
      "../venv/bin/python" ../../../integrations/airflow/example/run.py
    fi
  )
done
echo "wheel smoke test passed"
