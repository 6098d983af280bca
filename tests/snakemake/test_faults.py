"""The example workflow with 5% of its S3 requests failing (503, 500, connection resets)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, VENV_BIN, Dtool
from tests.support.proxy import FAULT_KINDS, S3Proxy
from tests.support.servers import S3Server

from .conftest import READS, Workflow, complement, dataset_items, frozen_dataset, make_input

EXAMPLE = ROOT / "integrations" / "snakemake" / "example"


@pytest.fixture
def faulty(moto: S3Server) -> Iterator[S3Proxy]:
    with S3Proxy(moto.endpoint_url, fault_rate=0.05, fault_kinds=FAULT_KINDS, seed=5) as proxy:
        yield proxy


def test_example_workflow_survives_five_percent_faults(
    moto: S3Server,
    faulty: S3Proxy,
    raw_bucket: str,
    results_bucket: str,
    workflow: Workflow,
    tmp_path: Path,
) -> None:
    raw_uri = make_input(moto, raw_bucket, tmp_path)
    for bucket in (raw_bucket, results_bucket):
        workflow.env[f"DTOOL_S3_ENDPOINT_{bucket}"] = faulty.url
        workflow.env[f"DTOOL_S3_ACCESS_KEY_ID_{bucket}"] = moto.access_key
        workflow.env[f"DTOOL_S3_SECRET_ACCESS_KEY_{bucket}"] = moto.secret_key
    workflow.write((EXAMPLE / "Snakefile").read_text())

    workflow.run("-c2", "--config", f"raw={raw_uri}", f"results=s3://{results_bucket}/alignments")

    assert faulty.stats.snapshot()["faults_injected"] > 0
    faulty.fault_rate = 0.0
    uri = frozen_dataset(moto, results_bucket, "alignments")
    expected = {
        relpath.removeprefix("reads/").replace(".fq", ".bam"): complement(text).encode()
        for relpath, text in READS.items()
    }
    assert dataset_items(moto, uri) == expected
    dtool = Dtool(VENV_BIN, {**workflow.env, "DTOOL_CACHE_DIRECTORY": str(tmp_path / "c")})
    assert "All good" in dtool("verify", "-f", uri)
