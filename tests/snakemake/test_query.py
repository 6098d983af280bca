"""Query syntax, settings mapping, the helper outside a workflow (no S3 needed)."""

from __future__ import annotations

import pytest
from snakemake.io import directory, is_flagged
from snakemake_storage_plugin_dtool import StorageProvider, StorageProviderSettings
from snakemake_storage_plugin_dtool.query import (
    MARKER,
    QueryError,
    parse_query,
    to_dtool_query,
)
from snakemake_storage_plugin_dtool.settings import core_overrides

from dtool_s3_core import list_datasets, override
from dtool_s3_core.errors import ConfigurationError, EndpointUnreachable
from dtool_s3_core.snakemake import RemoteProvider
from tests.support.servers import free_port


@pytest.mark.parametrize(
    ("query", "bucket", "dataset", "relpath"),
    [
        ("dtool://raw-data/ds/reads/a.fq", "raw-data", "ds", "reads/a.fq"),
        ("dtool://b_1/{ds}/x/{sample}.bam", "b_1", "{ds}", "x/{sample}.bam"),
        ("dtool://bkt/ds/@frozen", "bkt", "ds", MARKER),
        ("dtool://bkt/ds/with space/j\u00e4tte.txt", "bkt", "ds", "with space/j\u00e4tte.txt"),
    ],
)
def test_valid_queries(query: str, bucket: str, dataset: str, relpath: str) -> None:
    parsed = parse_query(query)
    assert (parsed.bucket, parsed.dataset, parsed.relpath) == (bucket, dataset, relpath)
    assert parsed.local_suffix == query.removeprefix("dtool://")
    assert str(parsed) == query
    assert StorageProvider.is_valid_query(query)


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("s3://bucket/ds/a.txt", "expected dtool://"),
        ("dtool://bucket/ds", "names no item"),
        ("dtool://bucket/ds/a//b", "empty"),
        ("dtool://bucket/ds/../x", "'..'"),
        ("dtool://bucket/ds/dir/", "trailing"),
        ("dtool://bucket/ds/@readme", "reserved"),
        ("dtool://bucket/ds/@frozen/x", "whole relpath"),
        ("dtool://b/ds/x", "invalid bucket"),
        ("dtool://bucket/ds/a\nb", "control"),
    ],
)
def test_invalid_queries(query: str, reason: str) -> None:
    with pytest.raises(QueryError, match=reason):
        parse_query(query)
    result = StorageProvider.is_valid_query(query)
    assert not result
    assert reason in str(result)


def test_s3_uris_map_to_the_plugin_scheme() -> None:
    assert to_dtool_query("s3://b1/ds/r.txt") == "dtool://b1/ds/r.txt"
    assert to_dtool_query("dtool://b1/ds/r.txt") == "dtool://b1/ds/r.txt"
    with pytest.raises(QueryError, match="expected s3://"):
        to_dtool_query("gs://b1/ds/r.txt")


def test_settings_map_to_core_overrides_and_hide_secrets() -> None:
    settings = StorageProviderSettings(
        endpoint_url="http://127.0.0.1:9", access_key="AK", secret_key="CANARY-SECRET", retries="3"
    )
    overrides = core_overrides(settings)
    origins = overrides.pop("origins")
    assert overrides == {
        "endpoint_url": "http://127.0.0.1:9",
        "access_key_id": "AK",
        "secret_access_key": "CANARY-SECRET",
        "max_attempts": "3",
    }
    # Hints name the plugin's own settings.
    assert str(origins["secret_access_key"]) == (
        "--storage-dtool-secret-key (or SNAKEMAKE_STORAGE_DTOOL_SECRET_KEY)"
    )
    assert set(origins) == set(overrides)
    assert "CANARY-SECRET" not in repr(settings)
    assert core_overrides(None) == {}


def test_helper_needs_a_workflow_and_hides_secrets() -> None:
    provider = RemoteProvider(endpoint_url="http://127.0.0.1:9", secret_key="CANARY-SECRET")
    assert "CANARY-SECRET" not in repr(provider)
    with pytest.raises(ConfigurationError, match="inside a Snakefile"):
        provider.remote("s3://bucket/ds/a.txt")
    with pytest.raises(ConfigurationError, match="expected s3://"):
        provider.remote("gs://bucket/ds/a.txt")


def test_helper_keeps_flags_when_it_rewrites_uris() -> None:
    query = RemoteProvider()._query(directory("s3://bucket/ds/out"))
    assert query == "dtool://bucket/ds/out"
    assert is_flagged(query, "directory")


def test_hints_name_the_plugin_setting_a_value_came_from() -> None:
    closed = free_port()
    settings = StorageProviderSettings(
        endpoint_url=f"http://127.0.0.1:{closed}", access_key="AK", secret_key="CANARY-SECRET"
    )
    with (
        override(None, **core_overrides(settings)),
        override(None, max_attempts=1),
        pytest.raises(EndpointUnreachable) as unreachable,
    ):
        list(list_datasets("s3://hinted"))
    assert str(unreachable.value) == (
        f"cannot reach http://127.0.0.1:{closed} for bucket 'hinted': check "
        "--storage-dtool-endpoint-url (or SNAKEMAKE_STORAGE_DTOOL_ENDPOINT_URL) and your network"
    )
