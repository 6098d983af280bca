"""Plain ``storage.dtool(...)`` workflows: inputs by name and by UUID, glob_wildcards, expand,
directory inputs and outputs, README from the marker file, and credentials kept out of logs."""

from __future__ import annotations

import uuid
from pathlib import Path

from dtool_s3_core import override, verify_dataset
from tests.support.servers import S3Server

from .conftest import (
    READS,
    Workflow,
    core_settings,
    dataset_items,
    frozen_dataset,
    make_input,
)

FEATURES = """
RAW, UUID, RES = config["raw"], config["uuid"], config["res"]
NAMES = glob_wildcards(storage.dtool(f"dtool://{RAW}/{UUID}/reads/{{name}}.fq")).name

rule all:
    input: storage.dtool(f"dtool://{RES}/features/@frozen")

rule by_name:
    input: storage.dtool(f"dtool://{RAW}/raw-reads/reads/a.fq")
    output: storage.dtool(f"dtool://{RES}/features/by-name.txt")
    shell: "cp {input} {output}"

rule by_uuid:
    input: storage.dtool(expand(f"dtool://{RAW}/{UUID}/reads/{{name}}.fq", name=NAMES))
    output: storage.dtool(f"dtool://{RES}/features/by-uuid.txt")
    shell: "cat {input} > {output}"

rule directories:
    input: storage.dtool(directory(f"dtool://{RAW}/raw-reads/reads/sub"))
    output: storage.dtool(directory(f"dtool://{RES}/features/tree"))
    shell: "mkdir -p {output}/nested; cp {input}/c.fq {output}/nested/; ls {input} >{output}/ls.txt"

rule freeze:
    input:
        storage.dtool(
            [f"dtool://{RES}/features/{n}" for n in ("by-name.txt", "by-uuid.txt", "tree")],
            retrieve=False,
        )
    output: storage.dtool(f"dtool://{RES}/features/@frozen")
    shell: "printf 'project: features\\\\n' > {output}"
"""


def test_inputs_by_name_and_uuid_glob_and_directories(
    moto: S3Server, raw_bucket: str, results_bucket: str, workflow: Workflow, tmp_path: Path
) -> None:
    raw_uri = make_input(moto, raw_bucket, tmp_path)
    canary = f"CANARY-{uuid.uuid4().hex}"
    workflow.env["SNAKEMAKE_STORAGE_DTOOL_SECRET_KEY"] = canary
    workflow.write(FEATURES)
    args = (
        "-c2",
        "--storage-dtool-endpoint-url",
        moto.endpoint_url,
        "--storage-dtool-access-key",
        moto.access_key,
        "--config",
        f"raw={raw_bucket}",
        f"uuid={raw_uri.rsplit('/', 1)[1]}",
        f"res={results_bucket}",
    )

    first = workflow.run(*args)

    uri = frozen_dataset(moto, results_bucket, "features")
    assert dataset_items(moto, uri) == {
        "by-name.txt": READS["reads/a.fq"].encode(),
        "by-uuid.txt": "".join(READS[k] for k in sorted(READS)).encode(),
        "tree/nested/c.fq": READS["reads/sub/c.fq"].encode(),
        "tree/ls.txt": b"c.fq\n",
    }
    with override(None, **core_settings(moto)):
        assert verify_dataset(uri, deep=True) == []
    readme_key = f"{uri.rsplit('/', 1)[1]}/README.yml"
    readme = moto.client().get_object(Bucket=results_bucket, Key=readme_key)["Body"].read()
    assert readme == b"project: features\n"

    second = workflow.run(*args)
    assert "Nothing to be done" in second.stdout + second.stderr
    for text in (first.stdout, first.stderr, second.stdout, second.stderr, workflow.logs()):
        assert canary not in text


def test_errors_are_clear_and_keep_secrets_out(
    moto: S3Server, raw_bucket: str, results_bucket: str, workflow: Workflow, tmp_path: Path
) -> None:
    make_input(moto, raw_bucket, tmp_path / "one", name="dup")
    make_input(moto, raw_bucket, tmp_path / "two", name="dup")
    canary = f"CANARY-{uuid.uuid4().hex}"
    workflow.env.update(
        {
            "SNAKEMAKE_STORAGE_DTOOL_ENDPOINT_URL": moto.endpoint_url,
            "SNAKEMAKE_STORAGE_DTOOL_ACCESS_KEY": moto.access_key,
            "SNAKEMAKE_STORAGE_DTOOL_SECRET_KEY": canary,
        }
    )
    workflow.write(
        f"""
rule copy:
    input: storage.dtool("dtool://{raw_bucket}/dup/reads/a.fq")
    output: storage.dtool("dtool://{results_bucket}/out/a.fq")
    shell: "cp {{input}} {{output}}"
"""
    )

    result = workflow.run("-c1", "--verbose", check=False)

    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"2 datasets are named 'dup' in s3://{raw_bucket} (s3://{raw_bucket}/" in output
    assert "use a UUID URI instead" in output
    assert canary not in output + workflow.logs()
