"""Provider metadata read by Airflow's ProvidersManager."""

from typing import Any


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "dtool-s3-airflow",
        "name": "dtool S3",
        "description": "dtool datasets in S3-compatible object storage.",
        "versions": ["0.1.0"],
    }
