"""Cluster-style execution: snakemake-executor-plugin-cluster-generic submitting every job as a
separate background process in a directory of its own (``cluster/submit.sh``), no shared file
system, the dataset as the default storage prefix, sources deployed through storage."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import VENV_BIN, Dtool
from tests.support.servers import S3Server

from .conftest import Workflow, dataset_items, dtool_env, frozen_dataset
from .test_objects import new_provider, store

CLUSTER = Path(__file__).parent / "cluster"

# Plain paths: --default-storage-prefix maps them into the dataset "results".
SNAKEFILE = """
rule all:
    input: storage.dtool("dtool://{res}/results/@frozen")

rule make:
    output: "{{n}}.txt"
    shell: "echo {{wildcards.n}} > {{output}}"

rule freeze:
    input: storage.dtool(expand("dtool://{res}/results/{{n}}.txt", n=["a", "b"]), retrieve=False)
    output: storage.dtool("dtool://{res}/results/@frozen")
    shell: "touch {{output}}"
"""


def cluster_args(bucket: str) -> list[str]:
    return [
        "--executor",
        "cluster-generic",
        "--cluster-generic-submit-cmd",
        str(CLUSTER / "submit.sh"),
        "--cluster-generic-status-cmd",
        str(CLUSTER / "status.sh"),
        "--jobs",
        "2",
        "--default-storage-provider",
        "dtool",
        "--default-storage-prefix",
        f"dtool://{bucket}/results",
        "--shared-fs-usage",
        "none",
        "--job-deploy-sources",
        # Expanded inside each job (the submit script sets JOB_DIR): job-private local copies.
        "--remote-job-local-storage-prefix",
        "$JOB_DIR/storage",
        "--seconds-between-status-checks",
        "1",
        "--latency-wait",
        "5",
    ]


def test_cluster_jobs_in_separate_directories_fill_and_freeze_one_dataset(
    moto: S3Server, results_bucket: str, workflow: Workflow, tmp_path: Path
) -> None:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    # Credentials reach the jobs through dtool's configuration file in the (shared) home
    # directory: not through settings, which Snakemake writes into the jobscripts, and not
    # through DTOOL_S3_*_<bucket> variables, which a shell drops when the bucket name has a '-'.
    config = Path.home() / ".config" / "dtool" / "dtool.json"
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps(dtool_env(moto, results_bucket)))
    workflow.env.update(
        {
            "CLUSTER_JOBS_DIR": str(jobs),
            # Jobscripts call `python -m snakemake`: this virtualenv's, as on a cluster node.
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
        }
    )
    workflow.write(SNAKEFILE.format(res=results_bucket))

    result = workflow.run(*cluster_args(results_bucket))

    output = result.stdout + result.stderr
    job_dirs = sorted(jobs.iterdir())
    assert len(job_dirs) == 3  # make a, make b, freeze; `all` runs in the main process
    for job_dir in job_dirs:
        assert (job_dir / "exitcode").read_text().strip() == "0", (job_dir / "job.log").read_text()
        # Each job unpacked the workflow sources it fetched from storage, and kept its local
        # copies under its own directory.
        assert (job_dir / "Snakefile").is_file()
        assert (job_dir / "storage" / "dtool").is_dir()
        script = (job_dir / "jobscript.sh").read_text()
        assert moto.secret_key not in script
    assert "Failed to remove" not in output
    uri = frozen_dataset(moto, results_bucket, "results")
    # The source archive that Snakemake stored under the prefix is no item of the dataset, and
    # Snakemake deleted it at the end of the run.
    assert dataset_items(moto, uri) == {"a.txt": b"a\n", "b.txt": b"b\n"}
    keys = [o["Key"] for o in moto.client().list_objects_v2(Bucket=results_bucket)["Contents"]]
    assert not [key for key in keys if "snakemake-workflow-sources" in key]
    dtool = Dtool(
        VENV_BIN, {**dtool_env(moto, results_bucket), "DTOOL_CACHE_DIRECTORY": str(tmp_path / "c")}
    )
    assert "All good" in dtool("verify", uri)
    assert sorted(dtool("ls", uri).split()[1::2]) == ["a.txt", "b.txt"]
    assert moto.secret_key not in output + workflow.logs()

    rerun = workflow.run(*cluster_args(results_bucket))
    assert "Nothing to be done" in rerun.stdout + rerun.stderr


def test_snakemakes_source_archive_is_kept_beside_the_dataset(
    moto: S3Server, results_bucket: str, tmp_path: Path
) -> None:
    provider = new_provider(moto, tmp_path / "local")
    name = f"snakemake-workflow-sources.{'0f' * 32}.tar.xz"
    archive = store(provider, f"dtool://{results_bucket}/results/{name}", "sources")
    store(provider, f"dtool://{results_bucket}/results/a.txt", "a")
    store(provider, f"dtool://{results_bucket}/results/@frozen", "")

    key = f".snakemake/results/{name}"
    body = moto.client().get_object(Bucket=results_bucket, Key=key)["Body"].read()
    assert body == b"sources"
    assert archive.exists() and archive.size() == len(b"sources")
    target = archive.local_path()
    target.unlink()
    archive.retrieve_object()
    assert target.read_text() == "sources"
    uri = frozen_dataset(moto, results_bucket, "results")
    assert dataset_items(moto, uri) == {"a.txt": b"a"}

    archive.remove()  # the dataset is frozen: Snakemake's clean-up still succeeds
    assert not archive.exists()
