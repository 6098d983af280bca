"""The Connection -> settings mapping, scoping, provider registration and template fields.

No DAG runs here and, except for the scoping test, no S3 server.
"""

from __future__ import annotations

import inspect
import logging
import os
from typing import Any

import pytest
from airflow.sdk import BaseOperator, Connection
from dtool_s3_airflow import _params, operators, sensors
from dtool_s3_airflow.connection import ConnectionSettings, buckets_of
from dtool_s3_airflow.hooks import DtoolS3Hook
from dtool_s3_airflow.provider_info import get_provider_info
from dtool_s3_airflow.triggers import DtoolS3DatasetTrigger

from dtool_s3_core import list_datasets, override, resolve_config
from dtool_s3_core.errors import ConfigurationError, EndpointUnreachable
from tests.airflow.conftest import CANARY
from tests.support.servers import free_port


def settings(extra: dict[str, Any] | None = None, **fields: Any) -> ConnectionSettings:
    conn = Connection(conn_id="c", conn_type="dtools3", **fields)
    return ConnectionSettings.from_connection(conn, extra or {})


def test_connection_fields_map_to_settings() -> None:
    got = settings(
        host="http://127.0.0.1:9000/",
        login="key-id",
        password=CANARY,
        extra={
            "dataset_prefix": "raw/",
            "publish_expiry": "600",
            "region_name": "eu-west-1",
            "verify": "false",
            "addressing_style": "virtual",
            "session_token": "token-value",
        },
    )
    assert got.overrides() == {
        "endpoint_url": "http://127.0.0.1:9000",
        "access_key_id": "key-id",
        "secret_access_key": CANARY,
        "session_token": "token-value",
        "dataset_prefix": "raw/",
        "publish_expiry": 600,
        "region": "eu-west-1",
        "verify": False,
        "addressing_style": "virtual",
        "profile": None,
    }
    assert CANARY not in repr(got) and "token-value" not in repr(got)


@pytest.mark.parametrize(
    ("host", "port", "extra", "expected"),
    [
        ("s3.example.org", None, {}, "https://s3.example.org"),
        ("s3.example.org", 9000, {}, "https://s3.example.org:9000"),
        ("http://minio", 9000, {}, "http://minio:9000"),
        ("http://minio:1", 9000, {}, "http://minio:1"),
        ("ignored", None, {"endpoint_url": "http://override:1"}, "http://override:1"),
        (None, None, {}, None),
        ("", None, {"region": ""}, None),
    ],
)
def test_endpoint_precedence(
    host: str | None, port: int | None, extra: dict[str, str], expected: str | None
) -> None:
    assert settings(host=host, port=port, extra=extra).endpoint_url == expected


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"login": "key-id"}, "connection 'c' sets the login but not the password"),
        ({"password": CANARY}, "connection 'c' sets the password but not the login"),
        ({"extra": {"addressing_style": "sideways"}}, "addressing_style must be one of"),
        ({"extra": {"publish_expiry": "soon"}}, "publish_expiry must be a whole number"),
        ({"extra": {"publish_expiry": -5}}, "publish_expiry must be a whole number"),
        ({"host": "ftp://x"}, "the endpoint must be an http:// or https:// URL"),
        ({"host": f"ftp://key:{CANARY}@x"}, "URL, got 'ftp://\\*\\*\\*@x'"),
        (
            {"extra": {"region_name": "eu_west_1"}},
            "^connection 'c': region_name must be letters, digits and inner hyphens, e.g. "
            "eu-west-1, got 'eu_west_1': correct the connection's region_name extra$",
        ),
        (
            {"extra": {"region_name": "eu-west-1", "region": "us-east-1"}},
            "^connection 'c' sets region_name and region to different regions: keep "
            "region_name only$",
        ),
        (
            {"extra": {"verify": "/no/such/ca.pem"}},
            "^connection 'c': verify must be true, false or the path of a CA bundle, but "
            "'/no/such/ca.pem' is not a file or directory here \\(on this worker\\): correct "
            "the connection's verify extra$",
        ),
        (
            {"extra": {"verify": 0.5}},
            "^connection 'c': verify must be true, false or the path of a CA bundle, got 0.5: "
            "correct the connection's verify extra$",
        ),
    ],
)
def test_bad_connections_fail_with_one_line(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as info:
        settings(**fields)
    assert "\n" not in str(info.value) and CANARY not in str(info.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (False, False),
        ("false", False),
        ("True", True),
        (" ", None),
        (None, None),
        (__file__, __file__),
    ],
)
def test_verify_takes_a_boolean_or_a_ca_bundle(value: Any, expected: bool | str | None) -> None:
    assert settings(extra={"verify": value}).verify == expected


def test_region_keeps_its_first_name() -> None:
    assert settings(extra={"region": "eu-west-2"}).region == "eu-west-2"
    assert settings(extra={"region": "eu-west-2", "region_name": "eu-west-2"}).region == "eu-west-2"


def test_a_schema_is_named_in_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        settings(schema="archive")
    assert (
        "connection 'c': ignoring its schema (the path of its URI): name buckets in the tasks' "
        "s3:// URIs, and a key prefix in extra dataset_prefix"
    ) in caplog.text


def test_unknown_extra_fields_are_named_in_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        settings(extra={"prefix": "oops/", "region": "x"})
    assert "ignoring unknown extra field(s) prefix" in caplog.text


def test_settings_apply_to_named_buckets_only_and_leave_environ_alone() -> None:
    one = settings(host="http://one:1", login="a-key", password=CANARY)
    two = settings(host="http://two:2", login="b-key", password="other-secret")
    environ = dict(os.environ)
    with one.applied_to("s3://alpha/some-uuid", "/local/path"), two.applied_to("s3://beta"):
        assert resolve_config("alpha").endpoint_url == "http://one:1"
        assert resolve_config("beta").endpoint_url == "http://two:2"
        assert resolve_config("gamma").endpoint_url is None
    assert resolve_config("alpha").endpoint_url is None
    assert dict(os.environ) == environ
    assert buckets_of(["s3://a-b/x", "file:///tmp", "s3://a-b", "s3://c-d"]) == ["a-b", "c-d"]


def test_local_locations_need_no_connection() -> None:
    # No connection "nowhere" exists: a local base URI must not look it up.
    with DtoolS3Hook("nowhere").configured("/tmp/datasets"):
        pass


def test_provider_info_declares_the_connection_form() -> None:
    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    manager = ProvidersManager()  # type: ignore[no-untyped-call]
    assert get_provider_info()["package-name"] in manager.providers
    hooks = ProvidersManagerTaskRuntime().hooks  # type: ignore[no-untyped-call]
    assert hooks["dtools3"].hook_class_name == "dtool_s3_airflow.hooks.DtoolS3Hook"
    # The type's first name, for existing connections.
    assert hooks["dtool_s3"].hook_class_name == "dtool_s3_airflow.hooks.DtoolS3AliasHook"
    assert hooks["dtool_s3"].connection_id_attribute_name == "dtool_s3_conn_id"
    widgets = manager.connection_form_widgets
    for conn_type in ("dtools3", "dtool_s3"):
        behaviour = manager.field_behaviours[conn_type]
        assert behaviour["relabeling"]["host"] == "Endpoint URL"
        # Port and Extra are documented fields: the form must show them.
        assert behaviour["hidden_fields"] == ["schema"]
        assert DtoolS3Hook.get_ui_field_behaviour() == behaviour
        names = ("dataset_prefix", "publish_expiry", "region_name", "verify", "addressing_style")
        for name in (*names, "test_bucket", "aws_conn_id"):
            assert f"extra__{conn_type}__{name}" in widgets
    assert DtoolS3Hook.default_conn_name == "dtool_s3_default"


OPERATORS = [
    operators.DtoolS3CreateDatasetOperator,
    operators.DtoolS3CopyOperator,
    operators.DtoolS3PublishOperator,
    operators.DtoolS3ListOperator,
    operators.DtoolS3FreezeOperator,
    sensors.DtoolS3DatasetSensor,
]


@pytest.mark.parametrize("cls", OPERATORS, ids=lambda cls: cls.__name__)
def test_template_fields_are_constructor_arguments(cls: type[BaseOperator]) -> None:
    parameters = inspect.signature(cls).parameters
    assert isinstance(cls.template_fields, tuple)
    assert set(cls.template_fields) <= set(parameters)
    locations = {"base_uri", "uri", "source_uri", "dest_base_uri", "source_dir"}
    assert locations & set(parameters) <= set(cls.template_fields)
    assert {p for p in parameters if p.endswith("conn_id")} <= set(cls.template_fields)


@pytest.mark.parametrize(
    ("read", "value", "expected"),
    [
        (lambda v: _params.flag("freeze", v), "False", False),
        (lambda v: _params.flag("freeze", v), True, True),
        (lambda v: _params.whole_number("limit", v, 1), " 25 ", 25),
        (lambda v: _params.whole_number("limit", v, 1), 7, 7),
        (_params.expiry, "None", None),
        (_params.expiry, "", None),
        (_params.expiry, 3600, 3600),
    ],
)
def test_rendered_parameters_are_read_as_text_or_native(
    read: Any, value: Any, expected: Any
) -> None:
    assert read(value) == expected


@pytest.mark.parametrize(
    ("read", "value", "message"),
    [
        (
            lambda v: _params.flag("freeze", v),
            "perhaps",
            "freeze must be true or false, got 'perhaps'",
        ),
        (
            lambda v: _params.whole_number("limit", v, 1),
            True,
            "limit must be a whole number of at least 1, got True",
        ),
        (
            _params.expiry,
            604801,
            "expiry (seconds) must be a whole number from 1 to 604800, got 604801",
        ),
    ],
)
def test_bad_rendered_parameters_are_one_line(read: Any, value: Any, message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        read(value)
    assert str(info.value) == message


def test_list_limit_is_checked_when_the_dag_is_parsed() -> None:
    with pytest.raises(ValueError, match="limit must be at least 1"):
        operators.DtoolS3ListOperator(task_id="t", base_uri="s3://b", limit=0)


def test_trigger_serializes_the_connection_id_only() -> None:
    trigger = DtoolS3DatasetTrigger("s3://b", "name", "conn", 5.0)
    path, kwargs = trigger.serialize()
    assert path == "dtool_s3_airflow.triggers.DtoolS3DatasetTrigger"
    assert kwargs == {
        "base_uri": "s3://b",
        "name": "name",
        "dtool_s3_conn_id": "conn",
        "poke_interval": 5.0,
    }
    assert DtoolS3DatasetTrigger(**kwargs).serialize() == (path, kwargs)


def test_hints_name_the_connection_fields_a_value_came_from() -> None:
    closed = free_port()
    got = settings(host=f"http://127.0.0.1:{closed}", login="key-id", password=CANARY)
    with got.applied_to("s3://hinted"), override(None, max_attempts=1):
        with pytest.raises(EndpointUnreachable) as unreachable:
            list(list_datasets("s3://hinted"))
        config = resolve_config("hinted")
    assert str(unreachable.value) == (
        f"cannot reach http://127.0.0.1:{closed} for bucket 'hinted': check host and port (or "
        "extra endpoint_url) of Airflow connection 'c' and your network"
    )
    assert config.where_set("access_key_id", "secret_access_key") == (
        "login and password of Airflow connection 'c'"
    )
    assert CANARY not in str(unreachable.value)
