"""The inventory: a run with nothing to do reads each dataset's manifest once, however many items
the workflow names (counted by a proxy in front of the S3 server)."""

from __future__ import annotations

from pathlib import Path

from dtool_s3_core import create_dataset, override
from tests.support.proxy import S3Proxy
from tests.support.servers import S3Server

from .conftest import Workflow, core_settings

MANY = """
N = int(config["count"])

rule all:
    input: storage.dtool("dtool://{res}/copies/@frozen")

rule copy:
    input: storage.dtool("dtool://{raw}/{uuid}/in/{{i}}.txt")
    output: storage.dtool("dtool://{res}/copies/{{i}}.txt")
    shell: "cp {{input}} {{output}}"

rule freeze:
    input: storage.dtool(expand("dtool://{res}/copies/{{i}}.txt", i=range(N)), retrieve=False)
    output: storage.dtool("dtool://{res}/copies/@frozen")
    shell: "touch {{output}}"
"""


def test_noop_rerun_reads_each_manifest_once(
    moto: S3Server, raw_bucket: str, results_bucket: str, workflow: Workflow, tmp_path: Path
) -> None:
    count = 12
    source = tmp_path / "many"
    source.mkdir()
    for i in range(count):
        (source / f"{i}.txt").write_text(f"{i}\n")
    with override(None, **core_settings(moto)):
        raw_uri = create_dataset(
            "many",
            f"s3://{raw_bucket}",
            files={f"in/{i}.txt": source / f"{i}.txt" for i in range(count)},
        )
    workflow.write(MANY.format(raw=raw_bucket, uuid=raw_uri.rsplit("/", 1)[1], res=results_bucket))
    keys = ["--storage-dtool-access-key", moto.access_key]
    workflow.env["SNAKEMAKE_STORAGE_DTOOL_SECRET_KEY"] = moto.secret_key
    config = ("--config", f"count={count}")
    # Both runs go through the proxy: the endpoint is part of an output dataset's UUID.
    with S3Proxy(moto.endpoint_url) as proxy:
        workflow.run("-c2", "--storage-dtool-endpoint-url", proxy.url, *keys, *config)
        proxy.stats.reset()
        rerun = workflow.run("-c2", "--storage-dtool-endpoint-url", proxy.url, *keys, *config)
        stats = proxy.stats.snapshot()

    assert "Nothing to be done" in rerun.stdout + rerun.stderr
    # Per dataset: its registration key, its admin metadata and its manifest; the output dataset
    # is found by name through its deterministic UUID. Nothing per item.
    assert stats["by_operation"].get("HeadObject", 0) == 0, stats
    assert stats["total"] <= 6, stats
