"""Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``).

The connection form is declarative (``ui-field-behaviour`` and ``conn-fields``), as Airflow 3.2+
expects: the UI builds it without importing the hook, and the custom fields are stored as plain
keys of the connection's ``extra`` (see :mod:`dtool_s3_airflow.hooks` for how they are read).
"""

from typing import Any

from . import __version__


def _text(label: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "label": label,
        "description": description,
        "schema": {"type": ["string", "null"], **schema},
    }


CONN_FIELDS: dict[str, dict[str, Any]] = {
    "dataset_prefix": _text(
        "Dataset prefix", "key prefix for new datasets, as DTOOL_S3_DATASET_PREFIX"
    ),
    "publish_expiry": {
        "label": "Publish expiry (s)",
        "description": "lifetime of presigned URLs made by publish; empty: public-read ACLs",
        "schema": {"type": ["integer", "null"], "minimum": 1, "maximum": 7 * 24 * 3600},
    },
    "region_name": _text("Region", "S3 region, e.g. eu-west-1 (the amazon provider's name)"),
    "verify": _text(
        "Verify TLS",
        "false to skip the certificate check, or the path of a CA bundle on the workers "
        "(default: the system's trust store, or AWS_CA_BUNDLE)",
    ),
    "addressing_style": _text(
        "Addressing style",
        "path, virtual or auto (default: path with an endpoint, else auto)",
        enum=["auto", "path", "virtual"],
    ),
    "session_token": _text("Session token", "temporary credentials only", format="password"),
    "aws_conn_id": _text(
        "AWS connection id",
        "an aws connection to take the endpoint, credentials, region and role_arn from; "
        "the fields set here win",
    ),
    "test_bucket": _text(
        "Test bucket", "bucket the Test button checks with HeadBucket (empty: ListBuckets)"
    ),
}

#: Port and Extra stay visible: the port is appended to the endpoint, and Extra holds the
#: fields without a form field of their own (endpoint_url).
UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema"],
    "relabeling": {
        "host": "Endpoint URL",
        "login": "Access key id",
        "password": "Secret access key",
    },
    "placeholders": {"host": "https://s3.example.org", "port": "9000"},
}


#: The connection type: no "_" (not allowed in a URI scheme, so Airflow warns about it and cannot
#: read a ``dtool_s3://`` URI) and no "-" (Airflow turns it into "_").
CONN_TYPE = "dtools3"
#: The type's first name, kept so that existing connections keep working.
ALIAS_CONN_TYPE = "dtool_s3"
ALIAS_HOOK_NAME = "dtool S3 (old type name dtool_s3: prefer dtools3)"


def _connection_type(conn_type: str, hook: str, name: str) -> dict[str, Any]:
    return {
        "connection-type": conn_type,
        "hook-class-name": f"dtool_s3_airflow.hooks.{hook}",
        "hook-name": name,
        "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
        "conn-fields": CONN_FIELDS,
    }


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "dtool-s3-core",
        "name": "dtool S3",
        "description": "dtool datasets in S3-compatible object storage.",
        "versions": [__version__],
        "connection-types": [
            _connection_type(CONN_TYPE, "DtoolS3Hook", "dtool S3"),
            _connection_type(ALIAS_CONN_TYPE, "DtoolS3AliasHook", ALIAS_HOOK_NAME),
        ],
        "triggers": [
            {
                "integration-name": "dtool S3",
                "python-modules": ["dtool_s3_airflow.triggers"],
            }
        ],
    }
