"""Output dataset UUIDs: the documented rule (endpoint, bucket, prefix, name, salt), the same name
on two servers, and a dataset half-written by release 0.1.0 (whose UUID had no endpoint) that a
resumed workflow continues, frozen through the previous release's ``frozen(uri, readme=...)``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import dtoolcore
import pytest

from dtool_s3_core import S3Dataset, create_dataset, list_datasets, override, resolve_config
from tests.support.servers import S3Server, moto_server

from .conftest import Workflow, core_settings, dataset_items, new_bucket

#: The namespace of the rule as documented in integrations/snakemake/README.md.
NAMESPACE = uuid.UUID("0c8f3b96-159c-4e48-9033-f76811e36434")


def documented_uuid(endpoint: str, bucket: str, name: str, salt: str = "") -> str:
    text = f"{endpoint}/{bucket}/{name}"
    return str(uuid.uuid5(NAMESPACE, f"{text}#{salt}" if salt else text))


@pytest.fixture(scope="module")
def other_moto() -> Iterator[S3Server]:
    """A second server: another site, with a bucket of the same name."""
    with moto_server() as server:
        yield server


SNAKEFILE = """
import os
from dtool_s3_core.snakemake import RemoteProvider

storage site_a:
    provider="dtool",
    endpoint_url=os.environ["SITE_A"],

storage site_b:
    provider="dtool",
    endpoint_url=os.environ["SITE_B"],

# The previous release's Snakefile: the freeze rule's output is frozen(uri, readme=...).
old = RemoteProvider(endpoint_url=os.environ["SITE_A"])

rule all:
    input:
        storage.site_a("dtool://{bucket}/results/x.txt"),
        storage.site_b("dtool://{bucket}/results/x.txt"),
        old.frozen("s3://{bucket}/resumed"),

rule write_a:
    output: storage.site_a("dtool://{bucket}/results/x.txt")
    shell: "echo a > {{output}}"

rule write_b:
    output: storage.site_b("dtool://{bucket}/results/x.txt")
    shell: "echo b > {{output}}"

rule resume:
    output: old.remote("s3://{bucket}/resumed/new.txt")
    shell: "echo new > {{output}}"

rule freeze_resumed:
    input: old.remote("s3://{bucket}/resumed/new.txt", retrieve=False)
    output: old.frozen("s3://{bucket}/resumed", readme="project: resumed\\n")
"""


def half_written_by_release_0_1_0(server: S3Server, bucket: str, tmp_path: Path) -> str:
    """A proto dataset 'resumed' with one item, under the UUID release 0.1.0 gave it."""
    legacy = str(uuid.uuid5(NAMESPACE, f"s3://{bucket}/resumed"))
    item = tmp_path / "old.txt"
    item.write_text("old\n")
    with override(None, **core_settings(server)):
        admin = dtoolcore.generate_admin_metadata("resumed")
        admin["uuid"] = legacy
        S3Dataset(resolve_config(bucket), legacy).create_proto(admin)
        dtoolcore.ProtoDataSet.from_uri(f"s3://{bucket}/{legacy}").put_item(str(item), "old.txt")
    return legacy


def test_uuids_differ_per_endpoint_and_a_resumed_old_dataset_is_continued(
    moto: S3Server, other_moto: S3Server, workflow: Workflow, tmp_path: Path
) -> None:
    bucket = new_bucket(moto, "site")
    other_moto.create_bucket(bucket)
    legacy = half_written_by_release_0_1_0(moto, bucket, tmp_path)
    # Another tool's dataset of the same name: a lookup by listing alone would be ambiguous.
    with override(None, **core_settings(moto)):
        namesake = create_dataset("resumed", f"s3://{bucket}")
    workflow.env.update(
        {
            "SITE_A": moto.endpoint_url,
            "SITE_B": other_moto.endpoint_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
    )
    workflow.write(SNAKEFILE.format(bucket=bucket))

    result = workflow.run("-c1")

    output = result.stdout + result.stderr
    site_a = documented_uuid(moto.endpoint_url, bucket, "results")
    site_b = documented_uuid(other_moto.endpoint_url, bucket, "results")
    assert site_a != site_b
    for server, expected in ((moto, site_a), (other_moto, site_b)):
        with override(None, **core_settings(server)):
            found = {d.uuid for d in list_datasets(f"s3://{bucket}") if d.name == "results"}
        assert found == {expected}
    # The old dataset was continued and frozen, not replaced by one under the new rule.
    with override(None, **core_settings(moto)):
        resumed = {d.uri: d.frozen for d in list_datasets(f"s3://{bucket}") if d.name == "resumed"}
    assert resumed == {f"s3://{bucket}/{legacy}": True, namesake: True}
    items = dataset_items(moto, f"s3://{bucket}/{legacy}")
    assert items == {"old.txt": b"old\n", "new.txt": b"new\n"}
    readme = moto.client().get_object(Bucket=bucket, Key=f"{legacy}/README.yml")["Body"].read()
    assert readme == b"project: resumed\n"
    assert (
        "frozen(uri, readme=...) as the freeze rule's output is deprecated: use "
        "freeze_marker(uri, readme=...) there (frozen(uri) is the marker as an input)"
    ) in output
    assert "DeprecationWarning" in output


def test_a_bad_uuid_salt_is_one_line(workflow: Workflow) -> None:
    workflow.write('rule all:\n    input: storage.dtool("dtool://some-bucket/results/a.txt")\n')

    result = workflow.run("-c1", "--storage-dtool-uuid-salt", "lab 7", check=False)

    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert (
        "the dtool storage plugin's uuid_salt 'lab 7' is not 1-80 letters, digits, '-', '_' or "
        "'.' (from --storage-dtool-uuid-salt, SNAKEMAKE_STORAGE_DTOOL_UUID_SALT or uuid_salt= "
        "in the Snakefile): choose one such as 'site-a'"
    ) in output
    assert "Traceback" not in output
