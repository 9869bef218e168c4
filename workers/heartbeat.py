"""The worker's heartbeat (``hubbub/contracts/heartbeat.py``): one beat every ``every``
seconds while the worker takes requests, and a last one, ``leaving``, once it has
finished them."""

from __future__ import annotations

import asyncio
import logging
import uuid

import orjson
from nats.aio.client import Client as NATS

from hubbub.contracts.heartbeat import HEARTBEAT_S, WorkerBeat
from hubbub.contracts.subjects import Subjects
from hubbub.tasks import cancel_and_wait

log = logging.getLogger(__name__)


def new_worker_id() -> str:
    return uuid.uuid4().hex[:16]


class Heartbeat:
    def __init__(
        self,
        nc: NATS,
        subjects: Subjects,
        worker_id: str | None = None,
        *,
        every: float = HEARTBEAT_S,
    ) -> None:
        self.nc = nc
        self.worker_id = worker_id or new_worker_id()
        self.every = every
        self._subject = subjects.worker_beat(self.worker_id)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """The first beat, sent before the worker subscribes to requests (a hub must know
        a worker before it can miss it); then one every ``every`` seconds."""
        await self._beat(leaving=False)
        await self.nc.flush()
        self._task = asyncio.create_task(self._beat_forever(), name="heartbeat")

    async def stop(self) -> None:
        """No more beats; the last one says the worker is leaving (once it has drained:
        nothing it held is lost)."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        await self._beat(leaving=True)

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            await self._beat(leaving=False)

    async def _beat(self, *, leaving: bool) -> None:
        """One beat, if NATS is connected. Not while it reconnects: nats-py would hold it
        to send after the reconnect (a stale beat), or fail to close with it held."""
        if not self.nc.is_connected:
            return
        beat = WorkerBeat(worker=self.worker_id, every=self.every, leaving=leaving)
        try:
            await self.nc.publish(self._subject, orjson.dumps(beat.model_dump()))
        except Exception:  # the connection dropped meanwhile: beats resume with it
            log.debug("heartbeat not sent", exc_info=True)
