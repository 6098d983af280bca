"""Configuration resolution: dtool-s3's keys, precedence, config_path, overrides, validation."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from dtool_s3_core.config import override, resolve_config
from dtool_s3_core.errors import ConfigurationError


def write_config(path: Path, values: dict[str, object]) -> str:
    path.write_text(json.dumps(values))
    return str(path)


def test_per_bucket_keys_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DTOOL_S3_ENDPOINT_my-bucket", "http://127.0.0.1:9000")
    monkeypatch.setenv("DTOOL_S3_ACCESS_KEY_ID_my-bucket", "AKIA")
    monkeypatch.setenv("DTOOL_S3_SECRET_ACCESS_KEY_my-bucket", "s3cr3t-value")
    monkeypatch.setenv("DTOOL_S3_DATASET_PREFIX_my-bucket", "u/alice")
    config = resolve_config("my-bucket")
    assert config.endpoint_url == "http://127.0.0.1:9000"
    assert config.access_key_id == "AKIA"
    assert config.secret_access_key == "s3cr3t-value"
    assert config.dataset_prefix == "u/alice"
    assert config.addressing_style == "path"
    assert config.checksum_mode == "when_required"
    assert "s3cr3t-value" not in repr(config)


def test_environment_wins_over_config_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(
        tmp_path / "dtool.json",
        {"DTOOL_S3_ENDPOINT_b1": "http://file:1", "DTOOL_S3_PUBLISH_EXPIRY": 3600},
    )
    assert resolve_config("b1", path).endpoint_url == "http://file:1"
    assert resolve_config("b1", path).publish_expiry == 3600
    monkeypatch.setenv("DTOOL_S3_ENDPOINT_b1", "http://env:2")
    assert resolve_config("b1", path).endpoint_url == "http://env:2"


def test_default_config_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path / "dtool.json", {"DTOOL_S3_REGION": "eu-west-2"})
    monkeypatch.setattr("dtool_s3_core.config.DEFAULT_CONFIG_PATH", path)
    assert resolve_config("b1").region == "eu-west-2"


def test_per_bucket_beats_global(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DTOOL_S3_MAX_CONCURRENCY", "4")
    monkeypatch.setenv("DTOOL_S3_MAX_CONCURRENCY_b2", "32")
    assert resolve_config("b1").max_concurrency == 4
    assert resolve_config("b2").max_concurrency == 32


def test_sizes_accept_units(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DTOOL_S3_MULTIPART_THRESHOLD", "8MiB")
    monkeypatch.setenv("DTOOL_S3_MULTIPART_PART_SIZE", "5242880")
    config = resolve_config("b")
    assert config.multipart_threshold == 8 * 1024 * 1024
    assert config.part_size == 5 * 1024 * 1024


def test_without_endpoint_botocore_chain_applies() -> None:
    config = resolve_config("plain-bucket")
    assert config.endpoint_url is None and config.access_key_id is None
    assert config.checksum_mode == "when_supported"
    assert config.addressing_style == "auto"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DTOOL_S3_ACCESS_KEY_ID_b": "AKIA"}, "DTOOL_S3_SECRET_ACCESS_KEY_b"),
        ({"DTOOL_S3_SECRET_ACCESS_KEY_b": "x", "DTOOL_S3_ACCESS_KEY_ID_b": ""}, "partial"),
        ({"DTOOL_S3_ENDPOINT_b": "ftp://host"}, "http:// or https://"),
        ({"DTOOL_S3_PUBLISH_EXPIRY": "soon"}, "must be a number"),
        ({"DTOOL_S3_PUBLISH_EXPIRY": "999999999"}, "7 days"),
        ({"DTOOL_S3_MULTIPART_PART_SIZE": "1MiB"}, "at least 5 MiB"),
        ({"DTOOL_S3_ADDRESSING_STYLE": "sideways"}, "auto, path or virtual"),
        ({"DTOOL_S3_CHECKSUM_MODE": "always"}, "when_required or when_supported"),
    ],
)
def test_bad_settings_are_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as info:
        resolve_config("b")
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert str(info.value) != "x"


def test_empty_publish_expiry_means_public_acl(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DTOOL_S3_PUBLISH_EXPIRY", "")
    assert resolve_config("b").publish_expiry is None


def test_invalid_config_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "dtool.json"
    path.write_text("{not json")
    with pytest.raises(ConfigurationError, match="not valid JSON"):
        resolve_config("b", str(path))


def test_override_is_scoped_and_beats_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DTOOL_S3_ENDPOINT_b", "http://env:1")
    with override("b", endpoint_url="http://override:2", dataset_prefix="p/"):
        assert resolve_config("b").endpoint_url == "http://override:2"
        assert resolve_config("b").dataset_prefix == "p/"
        assert resolve_config("other").dataset_prefix == ""
        with override(None, region="ap-south-1"):
            assert resolve_config("other").region == "ap-south-1"
    assert resolve_config("b").endpoint_url == "http://env:1"


def test_override_does_not_leak_between_threads() -> None:
    seen: dict[str, str | None] = {}

    def worker(name: str, endpoint: str) -> None:
        with override("shared", endpoint_url=endpoint):
            barrier.wait()
            seen[name] = resolve_config("shared").endpoint_url

    barrier = threading.Barrier(2)
    threads = [
        threading.Thread(target=worker, args=("a", "http://a:1")),
        threading.Thread(target=worker, args=("b", "http://b:2")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {"a": "http://a:1", "b": "http://b:2"}
    assert resolve_config("shared").endpoint_url is None


def test_unknown_override_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="unknown S3 setting"), override("b", colour="red"):
        pass
