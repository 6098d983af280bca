"""DtoolS3DatasetSensor: wait until a frozen dataset with a given name exists."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import Any

from airflow.sdk import BaseSensorOperator, Context, PokeReturnValue, conf
from airflow.sdk.exceptions import AirflowException

from ._errors import failures
from .hooks import DEFAULT_CONN_ID, DtoolS3Hook
from .triggers import DtoolS3DatasetTrigger


class DtoolS3DatasetSensor(BaseSensorOperator):
    """Wait for a frozen dataset called ``name`` under ``base_uri``; return its URI.

    A proto dataset of that name does not count until it is frozen. Several datasets with the
    name fail the task (use a UUID URI then), unless one of them was made for the name by
    :func:`dtool_s3_core.find_or_create_dataset` (as the Snakemake plugin makes its outputs):
    that one is used. Poke and deferrable mode return the same XCom and fail with the same
    message.

    :param base_uri: ``s3://bucket`` or a local directory
    :param name: the dataset name
    :param dtool_s3_conn_id: the ``dtool_s3`` connection for ``base_uri``
    :param deferrable: wait in the triggerer instead of a worker slot (default:
                       ``[operators] default_deferrable``)
    """

    template_fields: Sequence[str] = ("base_uri", "name", "dtool_s3_conn_id")
    ui_color = "#fdd0a2"

    def __init__(
        self,
        *,
        base_uri: str,
        name: str,
        dtool_s3_conn_id: str = DEFAULT_CONN_ID,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.base_uri = base_uri
        self.name = name
        self.dtool_s3_conn_id = dtool_s3_conn_id
        self.deferrable = deferrable

    @cached_property
    def hook(self) -> DtoolS3Hook:
        return DtoolS3Hook(self.dtool_s3_conn_id)

    def _what(self) -> str:
        return (
            f"waiting for dataset {self.name!r} in {self.base_uri} "
            f"(connection {self.dtool_s3_conn_id!r})"
        )

    def poke(self, context: Context) -> PokeReturnValue | bool:
        with failures(self._what()):
            info = self.hook.find_frozen(self.base_uri, self.name)
        if info is None:
            self.log.info("no frozen dataset %r in %s yet", self.name, self.base_uri)
            return False
        return PokeReturnValue(is_done=True, xcom_value=info.uri)

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        self.defer(
            trigger=DtoolS3DatasetTrigger(
                self.base_uri, self.name, self.dtool_s3_conn_id, self.poke_interval
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> str:
        if event.get("status") != "success":
            raise AirflowException(f"{self._what()} failed: {event.get('message')}")
        uri: str = event["uri"]
        self.log.info("found %s", uri)
        return uri
