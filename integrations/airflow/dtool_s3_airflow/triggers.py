"""The trigger behind DtoolS3DatasetSensor's deferrable mode."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.sdk.exceptions import AirflowException
from airflow.triggers.base import BaseTrigger, TriggerEvent

from ._errors import EXPECTED, one_line
from .connection import is_s3
from .hooks import DtoolS3Hook

# A missing connection is an AirflowException; it fails the task with its message like the rest.
_FAILURES: tuple[type[Exception], ...] = (*EXPECTED, AirflowException)


class DtoolS3DatasetTrigger(BaseTrigger):
    """Fire once a frozen dataset called ``name`` exists under ``base_uri``.

    Events: ``{"status": "success", "uri": ...}`` or ``{"status": "error", "message": ...}``.
    Only the connection id is serialized; the hook looks the connection up in the triggerer
    with the async API, and its blocking S3 calls run in a thread that carries the trigger's
    own settings (``asyncio.to_thread`` copies the context), so triggers sharing the
    triggerer's event loop never see each other's connections.

    :param poke_interval: seconds between two checks
    """

    def __init__(
        self, base_uri: str, name: str, dtool_s3_conn_id: str, poke_interval: float = 60.0
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.base_uri = base_uri
        self.name = name
        self.dtool_s3_conn_id = dtool_s3_conn_id
        self.poke_interval = poke_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "base_uri": self.base_uri,
                "name": self.name,
                "dtool_s3_conn_id": self.dtool_s3_conn_id,
                "poke_interval": self.poke_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            hook = (
                await DtoolS3Hook.for_trigger(self.dtool_s3_conn_id)
                if is_s3(self.base_uri)
                else DtoolS3Hook(self.dtool_s3_conn_id)
            )
            while True:
                info = await asyncio.to_thread(hook.find_frozen, self.base_uri, self.name)
                if info is not None:
                    yield _event(status="success", uri=info.uri)
                    return
                self.log.info("no frozen dataset %r in %s yet", self.name, self.base_uri)
                await asyncio.sleep(self.poke_interval)
        except _FAILURES as exc:
            yield _event(status="error", message=one_line(exc))


def _event(**payload: str) -> TriggerEvent:
    return TriggerEvent(payload)  # type: ignore[no-untyped-call]
