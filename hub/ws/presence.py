"""Presence: who is on a channel, across every hub.

Each entry lives in Redis — a sorted set per channel scored by expiry, and a hash of the
entries' details — and its hub renews it every third of ``HUBBUB_PRESENCE_TTL_S``. A hub
that dies stops renewing: its members drop out of every read after the TTL, and the
next hub to sweep that channel removes them and announces their leave.

**One diff per channel per tick.** Joins and leaves are not announced one by one: a hub
collects them for ``TICK_S`` and then writes them to Redis in one pipeline and publishes
one ``presence`` push per channel, ``{"joined": [...], "left": [...]}``, on
``presence.<kind>.<name>`` (core NATS, not kept), which every hub serving the channel
writes to its subscribers as it is. A storm of n subscribes thus costs each subscriber
one frame per tick instead of one per join — O(n) frames per tick, not O(n²). Within a
tick the last change of a client wins (joined then left → left).

**Fail-open.** Presence is a courtesy, never a reason to refuse a subscription: when
Redis is unreachable the changes are still announced, the failure is logged once (and
its end once), and the renewal after Redis is back records this hub's entries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import orjson
from nats.aio.client import Client as NATS
from redis.asyncio import Redis
from redis.exceptions import RedisError

from hub.ws import frames
from hubbub.contracts.channels import Channel
from hubbub.contracts.protocol import Push
from hubbub.contracts.subjects import Subjects
from hubbub.dependencies import redis_outage, unavailable
from hubbub.keys import RedisKeys

log = logging.getLogger("hubbub.ws.presence")

TICK_S = 0.2  # joins and leaves are gathered this long into one diff per channel
STOP_FLUSH_S = 2.0  # on stop, the last leaves get this long to go out

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

# One client's change within a tick: (joined?, {"user", "client"}, write it to Redis?).
Change = tuple[bool, dict[str, str], bool]


class Presence:
    def __init__(
        self,
        redis: Redis,
        keys: RedisKeys,
        nc: NATS,
        subjects: Subjects,
        ttl: float,
        tick: float = TICK_S,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.nc = nc
        self.subjects = subjects
        self.ttl = ttl
        self.tick = tick
        self.local: dict[str, dict[str, bytes]] = {}  # channel → client id → info JSON
        self.changes: dict[str, dict[str, Change]] = {}  # channel → client id → change
        self.redis_ok = True
        self._sweep = redis.register_script(SWEEP)
        self._pending = asyncio.Event()
        self._flushing = asyncio.Lock()  # diffs go out in the order they were gathered
        self._tasks: list[asyncio.Task[None]] = []

    # --- joins and leaves ---------------------------------------------------------------

    async def join(self, channel: Channel, user_id: str, client_id: str) -> None:
        """Record ``client_id`` as present; announced (and stored) with the next diff."""
        name = str(channel)
        info = {"user": user_id, "client": client_id, "joined_at": round(time.time(), 3)}
        self.local.setdefault(name, {})[client_id] = orjson.dumps(info)
        self._change(name, client_id, (True, {"user": user_id, "client": client_id}, True))

    async def leave(self, channel: Channel, user_id: str, client_id: str) -> None:
        name = str(channel)
        entries = self.local.get(name)
        if entries is None or entries.pop(client_id, None) is None:
            return
        if not entries:
            del self.local[name]
        self._change(name, client_id, (False, {"user": user_id, "client": client_id}, True))

    def _change(self, name: str, client_id: str, change: Change) -> None:
        self.changes.setdefault(name, {})[client_id] = change
        self._pending.set()

    async def members(self, channel: Channel) -> list[dict[str, Any]]:
        """Everyone on the channel, as Redis has it — this hub's own pending changes
        written first, so a client sees itself right after its subscribe. Redis
        unreachable: ``unavailable``."""
        if self.changes:
            await self.flush()
        name = str(channel)
        try:
            alive = await self.redis.zrangebyscore(self.keys.presence(name), time.time(), "+inf")
            if not alive:
                return []
            infos = await self.redis.hmget(self.keys.presence_info(name), cast(list[bytes], alive))
        except (RedisError, OSError) as exc:
            outage = redis_outage(exc)
            if outage is None:
                raise
            raise unavailable(outage) from None  # the list lives only in Redis: ask again
        return [orjson.loads(i) for i in infos if i is not None]

    # --- the diffs ----------------------------------------------------------------------

    async def flush(self) -> None:
        """Write the gathered changes to Redis and publish one diff per channel."""
        async with self._flushing:
            changes, self.changes = self.changes, {}
            if not changes:
                return
            await self._record(changes)
            for name, diff in changes.items():
                joined = [info for is_join, info, _ in diff.values() if is_join]
                left = [info for is_join, info, _ in diff.values() if not is_join]
                payload = frames.push(Push.PRESENCE, channel=name, joined=joined, left=left)
                try:
                    await self.nc.publish(self.subjects.presence(Channel.parse(name)), payload)
                except Exception:
                    log.warning("presence diff for %s not published", name, exc_info=True)

    async def _record(self, changes: dict[str, dict[str, Change]]) -> None:
        now = time.time()
        async with self._redis("recording joins and leaves") as ok:
            async with self.redis.pipeline(transaction=False) as pipe:
                for name, diff in changes.items():
                    entries = self.local.get(name, {})
                    joins = {c: entries[c] for c, (j, _, _) in diff.items() if j and c in entries}
                    leaves = [c for c, (j, _, write) in diff.items() if not j and write]
                    if joins:
                        pipe.zadd(self.keys.presence(name), dict.fromkeys(joins, now + self.ttl))
                        pipe.hset(self.keys.presence_info(name), mapping=dict(joins.items()))
                    if leaves:
                        pipe.zrem(self.keys.presence(name), *leaves)
                        pipe.hdel(self.keys.presence_info(name), *leaves)
                await pipe.execute()
            ok()

    @contextlib.asynccontextmanager
    async def _redis(self, doing: str) -> AsyncIterator[Callable[[], None]]:
        """Fail open: a Redis error is logged when Redis goes away and when it is back,
        not per call; the caller carries on without it."""

        def ok() -> None:
            if not self.redis_ok:
                self.redis_ok = True
                log.info("presence: Redis is back")

        try:
            yield ok
        except (RedisError, OSError) as exc:
            if self.redis_ok:
                self.redis_ok = False
                log.warning("presence: Redis unreachable (%s while %s); carrying on", exc, doing)

    # --- background: the diff ticker and the heartbeat ------------------------------------

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._ticker(), name="presence-diffs"),
            asyncio.create_task(self._heartbeat(), name="presence-heartbeat"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        with contextlib.suppress(Exception):
            async with asyncio.timeout(STOP_FLUSH_S):
                await self.flush()  # the leaves of the sockets that just closed

    async def _ticker(self) -> None:
        while True:
            await self._pending.wait()
            await asyncio.sleep(self.tick)  # gather the rest of this tick's changes
            self._pending.clear()
            try:
                await self.flush()
            except Exception:
                log.exception("presence diff failed")

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                await self.renew_and_sweep()
            except Exception:
                log.exception("presence heartbeat failed")

    async def renew_and_sweep(self, channel_of: Callable[[str], Channel] = Channel.parse) -> None:
        now = time.time()
        async with self._redis("renewing entries") as ok:
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
                    client = str(info["client"])
                    # Already removed from Redis by the sweep: announce only.
                    gone = {"user": str(info["user"]), "client": client}
                    self._change(str(channel_of(name)), client, (False, gone, False))
            ok()
