"""A recognisable secret never shows up in logs (any level), errors or reprs."""

from __future__ import annotations

import logging
from pathlib import Path

import dtoolcore
import pytest

from dtool_s3_core import create_dataset, list_datasets, override, publish_dataset
from dtool_s3_core.config import resolve_config
from tests.support.servers import S3Server


def test_secret_stays_out_of_logs_and_reprs(
    s3: S3Server, bucket: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if s3.verifies_signatures:
        pytest.skip("needs a server that accepts a made-up secret")
    secret = "SECRET-canary-7f3a9c"
    caplog.set_level(logging.DEBUG)
    (tmp_path / "f.txt").write_text("x")
    with override(
        bucket,
        endpoint_url=s3.endpoint_url,
        access_key_id="AKIDCANARY",
        secret_access_key=secret,
        cache_directory=str(tmp_path / "cache"),
    ):
        uri = create_dataset("s", f"s3://{bucket}", files={"f.txt": tmp_path / "f.txt"})
        url = publish_dataset(uri, expiry=60)
        infos = list_datasets(f"s3://{bucket}")
        broker = dtoolcore.DataSet.from_uri(uri)._storage_broker
        texts = [caplog.text, url, repr(infos), repr(broker), repr(resolve_config(bucket))]
        texts += [repr(broker.dataset), repr(broker.dataset.client)]
    assert all(secret not in text for text in texts)
