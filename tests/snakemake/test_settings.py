"""Where the plugin's S3 settings come from: environment variables, dtool's configuration file,
and their precedence (the plugin's settings win over dtool's per-bucket configuration)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.servers import S3Server

from .conftest import READS, Workflow, dataset_items, dtool_env, frozen_dataset, make_input

COPY = """
rule all:
    input: storage.dtool("dtool://{res}/copied/@frozen")

rule copy:
    input: storage.dtool("{raw}/reads/a.fq")
    output: storage.dtool("dtool://{res}/copied/a.fq")
    shell: "cp {{input}} {{output}}"

rule freeze:
    input: storage.dtool("dtool://{res}/copied/a.fq", retrieve=False)
    output: storage.dtool("dtool://{res}/copied/@frozen")
    shell: "touch {{output}}"
"""

# A tagged provider configured in the Snakefile (values from the environment, as a user would).
HELPER = """
import os
from dtool_s3_core.snakemake import RemoteProvider

dtool_s3 = RemoteProvider(
    endpoint_url=os.environ["TEST_ENDPOINT"],
    access_key=os.environ["TEST_ACCESS_KEY"],
    secret_key=os.environ["TEST_SECRET_KEY"],
)

rule all:
    input: dtool_s3.frozen("s3://{res}/copied")

rule copy:
    input: dtool_s3.remote("{raw}/reads/a.fq")
    output: dtool_s3.remote("s3://{res}/copied/a.fq")
    shell: "cp {{input}} {{output}}"

rule freeze:
    input: dtool_s3.remote("s3://{res}/copied/a.fq", retrieve=False)
    output: dtool_s3.freeze_marker("s3://{res}/copied")
"""


@pytest.mark.parametrize("source", ["snakemake_env", "dtool_json", "helper_keywords"])
def test_settings_sources(
    source: str,
    moto: S3Server,
    raw_bucket: str,
    results_bucket: str,
    workflow: Workflow,
    tmp_path: Path,
) -> None:
    raw_uri = make_input(moto, raw_bucket, tmp_path)
    template = COPY
    if source != "dtool_json":
        # dtool's configuration points elsewhere: the plugin's own settings must win.
        unreachable = S3Server("none", "http://127.0.0.1:9", "x", "y", False, False)
        workflow.env.update(dtool_env(unreachable, raw_bucket, results_bucket))
    if source == "helper_keywords":
        template = HELPER
        workflow.env.update(
            {
                "TEST_ENDPOINT": moto.endpoint_url,
                "TEST_ACCESS_KEY": moto.access_key,
                "TEST_SECRET_KEY": moto.secret_key,
            }
        )
    elif source == "snakemake_env":
        workflow.env.update(
            {
                "SNAKEMAKE_STORAGE_DTOOL_ENDPOINT_URL": moto.endpoint_url,
                "SNAKEMAKE_STORAGE_DTOOL_ACCESS_KEY": moto.access_key,
                "SNAKEMAKE_STORAGE_DTOOL_SECRET_KEY": moto.secret_key,
            }
        )
    else:
        config = Path.home() / ".config" / "dtool" / "dtool.json"
        config.parent.mkdir(parents=True)
        config.write_text(json.dumps(dtool_env(moto, raw_bucket, results_bucket)))
    raw = raw_uri if source == "helper_keywords" else raw_uri.replace("s3://", "dtool://")
    workflow.write(template.format(raw=raw, res=results_bucket))

    workflow.run("-c1")

    uri = frozen_dataset(moto, results_bucket, "copied")
    assert dataset_items(moto, uri) == {"a.fq": READS["reads/a.fq"].encode()}
