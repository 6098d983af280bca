"""The deferrable sensor's trigger, run on an event loop as the triggerer would."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from dtool_s3_airflow.hooks import DtoolS3Hook
from dtool_s3_airflow.triggers import DtoolS3DatasetTrigger

from dtool_s3_core import create_dataset, freeze_dataset
from tests.airflow.conftest import ARCHIVE_CONN, CANARY, OFFSITE_CONN, Endpoints
from tests.airflow.helpers import on, write_files

FAST = 0.05


async def first_event(trigger: DtoolS3DatasetTrigger) -> dict[str, Any]:
    async for event in trigger.run():
        payload: dict[str, Any] = event.payload
        return payload
    raise AssertionError("the trigger ended without an event")


def test_trigger_waits_until_the_dataset_is_frozen(
    endpoints: Endpoints, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket, server = endpoints.archive_bucket, endpoints.archive
    with on(server, bucket):
        uri = create_dataset(
            "late", f"s3://{bucket}", source_dir=write_files(tmp_path, {"a": b"a"}), freeze=False
        )
    checks: list[object] = []
    find_frozen = DtoolS3Hook.find_frozen

    def counted(hook: DtoolS3Hook, base_uri: str, name: str) -> Any:
        found = find_frozen(hook, base_uri, name)
        checks.append(found)
        return found

    monkeypatch.setattr(DtoolS3Hook, "find_frozen", counted)

    async def scenario() -> dict[str, Any]:
        trigger = DtoolS3DatasetTrigger(f"s3://{bucket}", "late", ARCHIVE_CONN, FAST)
        waiting = asyncio.create_task(first_event(trigger))
        # Two checks, not a fixed time: on a busy machine that time may pass before the first.
        deadline = time.monotonic() + 60
        while len(checks) < 2:
            assert time.monotonic() < deadline, f"the trigger checked {len(checks)} times in 60 s"
            await asyncio.sleep(FAST)
        assert not waiting.done(), "fired for a proto dataset"

        def freeze() -> None:
            with on(server, bucket):
                freeze_dataset(uri)

        await asyncio.to_thread(freeze)
        return await asyncio.wait_for(waiting, timeout=60)

    assert asyncio.run(scenario()) == {"status": "success", "uri": uri}


def test_concurrent_triggers_keep_their_connections(endpoints: Endpoints, tmp_path: Path) -> None:
    """Two triggers on one event loop, one bucket name on two endpoints, one dataset name."""
    bucket = f"twin-{uuid.uuid4().hex[:10]}"
    source = write_files(tmp_path, {"a": b"a"})
    expected = {}
    for conn_id, server in ((ARCHIVE_CONN, endpoints.archive), (OFFSITE_CONN, endpoints.offsite)):
        server.create_bucket(bucket)
        with on(server, bucket):
            expected[conn_id] = create_dataset("twin", f"s3://{bucket}", source_dir=source)

    async def both() -> list[dict[str, Any]]:
        return await asyncio.gather(
            *(
                first_event(DtoolS3DatasetTrigger(f"s3://{bucket}", "twin", conn_id, FAST))
                for conn_id in expected
            )
        )

    events = asyncio.run(both())
    assert [event["uri"] for event in events] == list(expected.values())
    assert len(set(expected.values())) == 2


def test_trigger_reports_an_ambiguous_name(endpoints: Endpoints, tmp_path: Path) -> None:
    bucket, server = endpoints.archive_bucket, endpoints.archive
    with on(server, bucket):
        uris = sorted(
            create_dataset(
                "dup", f"s3://{bucket}", files={"a": str(write_files(tmp_path, {"a": b""}) / "a")}
            )
            for _ in range(2)
        )

    event = asyncio.run(
        first_event(DtoolS3DatasetTrigger(f"s3://{bucket}", "dup", ARCHIVE_CONN, FAST))
    )

    assert event == {
        "status": "error",
        "message": f"2 datasets are named 'dup' in s3://{bucket} ({', '.join(uris)}): "
        "use a UUID URI instead",
    }


def test_trigger_reads_a_linked_aws_connection(
    endpoints: Endpoints, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The triggerer's async lookup follows extra.aws_conn_id and assumes the role there."""
    bucket, server = endpoints.archive_bucket, endpoints.archive
    with on(server, bucket):
        uri = create_dataset("linked", f"s3://{bucket}", source_dir=write_files(tmp_path, {}))
    aws = {
        "conn_type": "aws",
        "login": server.access_key,
        "password": CANARY,
        "extra": {
            "endpoint_url": server.endpoint_url,
            "role_arn": "arn:aws:iam::123456789012:role/reader",
            "service_config": {"sts": {"endpoint_url": server.endpoint_url}},
        },
    }
    monkeypatch.setenv("AIRFLOW_CONN_AWS_READER", json.dumps(aws))
    layered = {"conn_type": "dtool_s3", "extra": {"aws_conn_id": "aws_reader"}}
    monkeypatch.setenv("AIRFLOW_CONN_LAYERED", json.dumps(layered))

    event = asyncio.run(first_event(DtoolS3DatasetTrigger(f"s3://{bucket}", "linked", "layered")))

    assert event == {"status": "success", "uri": uri}
