"""Presence: who is on a channel, across every hub.

Each entry lives in Redis — a sorted set per channel scored by expiry, and a hash of the
entries' details — and its hub renews it every third of ``HUBBUB_PRESENCE_TTL_S``. A hub
that dies stops renewing: its members drop out of every read after the TTL, and the
next hub to sweep that channel removes them and announces their ``leave``. Join and
leave travel between hubs on ``presence.<kind>.<name>`` (core NATS, not kept).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, cast

import orjson
from nats.aio.client import Client as NATS
from redis.asyncio import Redis

from hub.ws import frames
from hubbub.contracts.channels import Channel
from hubbub.contracts.protocol import Push
from hubbub.contracts.subjects import Subjects
from hubbub.keys import RedisKeys

log = logging.getLogger("hubbub.ws.presence")

# Remove entries that expired; return them, so exactly one hub announces each leave.
SWEEP = """
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if #expired > 0 then
  redis.call('ZREM', KEYS[1], unpack(expired))
  local infos = redis.call('HMGET', KEYS[2], unpack(expired))
  redis.call('HDEL', KEYS[2], unpack(expired))
  return infos
end
return {}
"""


class Presence:
    def __init__(
        self, redis: Redis, keys: RedisKeys, nc: NATS, subjects: Subjects, ttl: float
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.nc = nc
        self.subjects = subjects
        self.ttl = ttl
        self.local: dict[str, dict[str, bytes]] = {}  # channel → client id → info JSON
        self._sweep = redis.register_script(SWEEP)
        self._task: asyncio.Task[None] | None = None

    async def join(self, channel: Channel, user_id: str, client_id: str) -> None:
        name = str(channel)
        info = {"user": user_id, "client": client_id, "joined_at": round(time.time(), 3)}
        raw = orjson.dumps(info)
        self.local.setdefault(name, {})[client_id] = raw
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(self.keys.presence(name), {client_id: time.time() + self.ttl})
            pipe.hset(self.keys.presence_info(name), client_id, raw)
            await pipe.execute()
        await self._announce(channel, Push.JOIN, info)

    async def leave(self, channel: Channel, user_id: str, client_id: str) -> None:
        name = str(channel)
        entries = self.local.get(name)
        if entries is None or entries.pop(client_id, None) is None:
            return
        if not entries:
            del self.local[name]
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self.keys.presence(name), client_id)
            pipe.hdel(self.keys.presence_info(name), client_id)
            await pipe.execute()
        await self._announce(channel, Push.LEAVE, {"user": user_id, "client": client_id})

    async def members(self, channel: Channel) -> list[dict[str, Any]]:
        name = str(channel)
        alive = await self.redis.zrangebyscore(self.keys.presence(name), time.time(), "+inf")
        if not alive:
            return []
        infos = await self.redis.hmget(self.keys.presence_info(name), cast(list[bytes], alive))
        return [orjson.loads(i) for i in infos if i is not None]

    async def _announce(self, channel: Channel, kind: Push, info: dict[str, Any]) -> None:
        payload = frames.push(
            kind, channel=str(channel), info={"user": info["user"], "client": info["client"]}
        )
        await self.nc.publish(self.subjects.presence(channel), payload)

    # --- heartbeat ------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._heartbeat(), name="presence-heartbeat")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                await self.renew_and_sweep()
            except Exception:
                log.exception("presence heartbeat failed")

    async def renew_and_sweep(self, channel_of: Callable[[str], Channel] = Channel.parse) -> None:
        now = time.time()
        for name, entries in list(self.local.items()):
            if entries:  # re-added, not just renewed: a late renewal may follow a sweep
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.zadd(self.keys.presence(name), dict.fromkeys(entries, now + self.ttl))
                    pipe.hset(self.keys.presence_info(name), mapping=dict(entries.items()))
                    await pipe.execute()
            expired = await self._sweep(
                keys=[self.keys.presence(name), self.keys.presence_info(name)], args=[now]
            )
            for raw in expired or []:
                if raw is None:
                    continue
                info = orjson.loads(raw)
                await self._announce(channel_of(name), Push.LEAVE, info)
