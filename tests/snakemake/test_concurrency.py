"""Many writers, one dataset: parallel local jobs, separate Snakemake processes (as cluster jobs
are), and separate Python processes storing into a dataset that does not exist yet."""

from __future__ import annotations

import logging
import multiprocessing
from pathlib import Path
from typing import Any

from snakemake_storage_plugin_dtool import StorageProvider, StorageProviderSettings

from dtool_s3_core import list_datasets, override, verify_dataset
from tests.support.servers import S3Server

from .conftest import Workflow, core_settings, dataset_items, frozen_dataset
from .test_uuids import documented_uuid

WRITER = """
PARTS = config["parts"].split(",")
N = int(config["count"])
NAMES = [f"{{p}}-{{i}}" for p in PARTS for i in range(N)]

rule all:
    input: {target}

rule make:
    output: storage.dtool("dtool://{res}/shared/{{name}}.txt")
    shell: "echo {{wildcards.name}} > {{output}}"

rule freeze:
    input: storage.dtool(expand("dtool://{res}/shared/{{name}}.txt", name=NAMES), retrieve=False)
    output: storage.dtool("dtool://{res}/shared/@frozen")
    shell: "touch {{output}}"
"""
ITEMS = 'storage.dtool(expand("dtool://{res}/shared/{{name}}.txt", name=NAMES))'
MARKER = 'storage.dtool("dtool://{res}/shared/@frozen")'


def settings_args(server: S3Server) -> list[str]:
    return [
        "--storage-dtool-endpoint-url",
        server.endpoint_url,
        "--storage-dtool-access-key",
        server.access_key,
        "--storage-dtool-secret-key",
        server.secret_key,
    ]


#: The salt as a variable, as Snakemake hands it to cluster jobs.
SALT_IN_ENV = {"SNAKEMAKE_STORAGE_DTOOL_UUID_SALT": "lab-7"}

SECRET_FLAGS_WARNING = (
    "--storage-dtool-access-key, --storage-dtool-secret-key on the command line: other users "
    "can read command lines in process listings, shells keep them in their history, and "
    "Snakemake writes these settings into cluster jobscripts (which --verbose copies into "
    ".snakemake/log/); put credentials into dtool's configuration (DTOOL_S3_*_<bucket> or "
    "dtool.json) instead, or at least into SNAKEMAKE_STORAGE_DTOOL_ACCESS_KEY, "
    "SNAKEMAKE_STORAGE_DTOOL_SECRET_KEY"
)


def expected_items(parts: list[str], n: int) -> dict[str, bytes]:
    return {f"{p}-{i}.txt": f"{p}-{i}\n".encode() for p in parts for i in range(n)}


def test_four_parallel_jobs_fill_one_dataset(
    moto: S3Server, results_bucket: str, workflow: Workflow
) -> None:
    workflow.write(WRITER.format(res=results_bucket, target=MARKER.format(res=results_bucket)))

    workflow.run("-c4", *settings_args(moto), "--config", "parts=p", "count=8")

    uri = frozen_dataset(moto, results_bucket, "shared")
    assert dataset_items(moto, uri) == expected_items(["p"], 8)
    with override(None, **core_settings(moto)):
        assert verify_dataset(uri) == []


def test_separate_snakemake_processes_share_one_dataset(
    moto: S3Server, results_bucket: str, tmp_path: Path
) -> None:
    parts = ["x", "y", "z"]
    items_only = WRITER.format(res=results_bucket, target=ITEMS.format(res=results_bucket))
    salt = ("--storage-dtool-uuid-salt", "lab-7")
    runs = []
    for part in parts:
        # Separate working directories: separate Snakemake processes, like cluster jobs.
        writer = Workflow(tmp_path / part)
        writer.write(items_only)
        config = ("--config", f"parts={part}", "count=3")
        runs.append(writer.start("-c2", *settings_args(moto), *salt, *config))
    outputs = [run.communicate(timeout=180)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0], outputs
    freezer = Workflow(tmp_path / "freeze")
    freezer.write(WRITER.format(res=results_bucket, target=MARKER.format(res=results_bucket)))

    result = freezer.run(
        "-c1", *settings_args(moto), "--config", "parts=x,y,z", "count=3", env=SALT_IN_ENV
    )

    assert "rule make:" not in result.stdout + result.stderr
    uri = frozen_dataset(moto, results_bucket, "shared")
    assert dataset_items(moto, uri) == expected_items(parts, 3)
    # Every process computed the UUID of the documented rule, salt included.
    assert uri == f"s3://{results_bucket}/" + documented_uuid(
        moto.endpoint_url, results_bucket, "shared", "lab-7"
    )
    assert uri != f"s3://{results_bucket}/" + documented_uuid(
        moto.endpoint_url, results_bucket, "shared"
    )
    # The secret key was a flag: each run says once what that exposes, and never the secret.
    for output in (*outputs, result.stdout + result.stderr):
        lines = [line for line in output.splitlines() if "on the command line" in line]
        assert lines == [SECRET_FLAGS_WARNING]
        assert moto.secret_key not in output


def _store(server: S3Server, bucket: str, index: int, workdir: str, barrier: Any) -> None:
    """One writer process: store an item into the dataset 'race', released with the others."""
    provider = StorageProvider(
        local_prefix=Path(workdir) / f"p{index}",
        logger=logging.getLogger("race"),
        settings=StorageProviderSettings(
            endpoint_url=server.endpoint_url,
            access_key=server.access_key,
            secret_key=server.secret_key,
        ),
    )
    obj = provider.object(f"dtool://{bucket}/race/item-{index}.txt")
    obj.local_path().parent.mkdir(parents=True, exist_ok=True)
    obj.local_path().write_text(f"item {index}\n")
    barrier.wait(timeout=60)
    obj.store_object()


def test_processes_creating_the_same_dataset_at_once_get_one(
    moto: S3Server, results_bucket: str, tmp_path: Path
) -> None:
    writers = 4
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(writers)
    processes = [
        context.Process(target=_store, args=(moto, results_bucket, i, str(tmp_path), barrier))
        for i in range(writers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [p.exitcode for p in processes] == [0] * writers

    with override(None, **core_settings(moto)):
        datasets = list_datasets(f"s3://{results_bucket}")
    assert [(d.name, d.frozen) for d in datasets] == [("race", False)]
    provider = StorageProvider(
        local_prefix=tmp_path / "check",
        logger=logging.getLogger("race"),
        settings=StorageProviderSettings(
            endpoint_url=moto.endpoint_url,
            access_key=moto.access_key,
            secret_key=moto.secret_key,
        ),
    )
    dataset = provider.datasets.find(results_bucket, "race")
    assert dataset is not None
    assert sorted(provider.datasets.items(dataset)) == [f"item-{i}.txt" for i in range(writers)]
