"""The issue's example end to end: frozen input, outputs frozen into a new dataset, reruns."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, VENV_BIN, Dtool
from tests.support.servers import S3Server

from .conftest import (
    READS,
    Workflow,
    complement,
    dataset_items,
    dtool_env,
    frozen_dataset,
    make_input,
    oracle_runner,
)
from .test_uuids import documented_uuid

EXAMPLE = ROOT / "integrations" / "snakemake" / "example"


def test_example_workflow_freezes_a_valid_dataset(
    moto: S3Server, raw_bucket: str, results_bucket: str, workflow: Workflow, tmp_path: Path
) -> None:
    raw_uri = make_input(moto, raw_bucket, tmp_path)
    workflow.env.update(dtool_env(moto, raw_bucket, results_bucket))
    workflow.write((EXAMPLE / "Snakefile").read_text())
    args = ("-c2", "--config", f"raw={raw_uri}", f"results=s3://{results_bucket}/alignments")

    first = workflow.run(*args)

    # The freeze marker is an input of `rule all`: no "only valid for outputs" warning.
    assert "only valid for" not in first.stdout + first.stderr + workflow.logs()
    uri = frozen_dataset(moto, results_bucket, "alignments")
    expected = {
        relpath.removeprefix("reads/").replace(".fq", ".bam"): complement(text).encode()
        for relpath, text in READS.items()
    }
    assert dataset_items(moto, uri) == expected
    dtool = Dtool(VENV_BIN, {**workflow.env, "DTOOL_CACHE_DIRECTORY": str(tmp_path / "c1")})
    assert "All good" in dtool("verify", uri)
    readme_key = f"{uri.rsplit('/', 1)[1]}/README.yml"
    readme = moto.client().get_object(Bucket=results_bucket, Key=readme_key)["Body"].read()
    assert b'"project": "example"' in readme
    oracle = oracle_runner({**workflow.env, "DTOOL_CACHE_DIRECTORY": str(tmp_path / "c2")})
    if oracle is not None:
        assert "All good" in oracle("verify", uri)
        assert sorted(oracle("ls", uri).split()[1::2]) == sorted(expected)
    manifest_key = f"{uri.rsplit('/', 1)[1]}/manifest.json"
    manifest = moto.client().get_object(Bucket=results_bucket, Key=manifest_key)["Body"].read()

    rerun = workflow.run(*args)
    assert "Nothing to be done" in rerun.stdout + rerun.stderr

    forced = workflow.run(*args, "--forcerun", "align", check=False)
    output = forced.stdout + forced.stderr
    assert forced.returncode != 0
    assert f"dataset 'alignments' ({uri}) is frozen and cannot change" in output
    assert "'alignments-v2'" in output
    assert moto.client().get_object(Bucket=results_bucket, Key=manifest_key)["Body"].read() == (
        manifest
    )
    assert dataset_items(moto, uri) == expected
    assert "All good" in dtool("verify", "-f", uri)


def test_example_script_runs_on_its_own() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE / "run.py")],
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "integrations" / "snakemake")]),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "dtool verify passed" in result.stderr


def test_the_storage_directive_example_of_the_readme_runs(
    moto: S3Server, raw_bucket: str, results_bucket: str, workflow: Workflow, tmp_path: Path
) -> None:
    readme = (ROOT / "integrations" / "snakemake" / "README.md").read_text()
    section = readme.split("## The `storage:` directive", 1)[1]
    snakefile = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert 'storage:\n    provider="dtool",' in snakefile
    make_input(moto, raw_bucket, tmp_path, name="reads-2024")
    workflow.env.update(
        {
            "SNAKEMAKE_STORAGE_DTOOL_ENDPOINT_URL": moto.endpoint_url,
            "SNAKEMAKE_STORAGE_DTOOL_ACCESS_KEY": moto.access_key,
            "SNAKEMAKE_STORAGE_DTOOL_SECRET_KEY": moto.secret_key,
        }
    )
    workflow.write(
        snakefile.replace("dtool://raw-data/", f"dtool://{raw_bucket}/").replace(
            "dtool://results/", f"dtool://{results_bucket}/"
        )
    )

    result = workflow.run("-c2")

    uri = frozen_dataset(moto, results_bucket, "alignments")
    # The directive's uuid_salt is part of the UUID, as the README's rule says.
    assert uri == f"s3://{results_bucket}/" + documented_uuid(
        moto.endpoint_url, results_bucket, "alignments", "lab-42"
    )
    assert dataset_items(moto, uri) == {
        relpath.removeprefix("reads/").replace(".fq", ".bam"): complement(text).encode()
        for relpath, text in READS.items()
    }
    key = f"{uri.rsplit('/', 1)[1]}/README.yml"
    assert moto.client().get_object(Bucket=results_bucket, Key=key)["Body"].read() == (
        b"project: alignments\n"
    )
    assert moto.secret_key not in result.stdout + result.stderr + workflow.logs()
