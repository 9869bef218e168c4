"""Control messages (``ctl.user.*``) in tests: knowing when a hub has acted on them, and
counting what a hub asks the workers."""

from __future__ import annotations

import time
import uuid

import orjson
from aiohttp.test_utils import TestServer
from nats.aio.client import Client as NATS
from nats.aio.subscription import Subscription

from hub.state import REVOCATIONS
from hubbub.config import Settings
from hubbub.contracts.control import Deactivated
from hubbub.contracts.subjects import Subjects
from tests.support.waiting import wait_for


async def heard_so_far(hub: TestServer, nc: NATS, settings: Settings) -> None:
    """Return once ``hub`` has acted on every control message published before this call:
    a sentinel sent after them on ``ctl.user.*`` is applied after them (one subscription,
    its messages in order)."""
    sentinel = f"sentinel-{uuid.uuid4().hex[:8]}"
    message = Deactivated(user_id=sentinel, until=time.time() + 60)
    await nc.publish(
        Subjects(settings.namespace).control_user(sentinel), orjson.dumps(message.model_dump())
    )
    revocations = hub.app[REVOCATIONS]
    await wait_for(lambda: revocations.is_deactivated(sentinel), what="the sentinel heard")


class WorkerAsks:
    """Every ``channels.authorize`` request on the bus, seen by a subscription of its own
    (the workers' queue group still gets each one)."""

    def __init__(self, nc: NATS, settings: Settings) -> None:
        self.nc = nc
        self.subject = Subjects(settings.namespace).service("channels.authorize")
        self._sub: Subscription | None = None
        self.seen: list[tuple[str, str, str]] = []  # (user, channel, action)

    async def start(self) -> None:
        self._sub = await self.nc.subscribe(self.subject)
        await self.nc.flush()

    async def of(self, user_id: str) -> list[tuple[str, str]]:
        """The (channel, action) of each request about ``user_id`` so far, in order. The
        requests were answered before this is called, so they reached this subscription
        before the flush's reply."""
        assert self._sub is not None
        await self.nc.flush()
        while self._sub.pending_msgs:
            params = orjson.loads((await self._sub.next_msg()).data)["params"]
            self.seen.append((params["user_id"], params["channel"], params["action"]))
        return [(channel, action) for user, channel, action in self.seen if user == user_id]
