"""Rate limits in Redis, shared by every worker process.

A fixed window that opens at the first attempt: ``INCR`` a counter per (action, who),
give it the window's TTL when it is new, refuse once the count passes the limit, and
say how long until the window closes (``Retry-After``). One Lua script checks several
limits at once (say per IP and per account), atomically. The cost of the simplicity: at
a window's edge a client may get up to twice the limit within a short span — fine for
slowing down guessing, which is what these limits are for.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from handlers.context import Context
from hubbub.config import Rate
from hubbub.contracts.errors import RateLimited

# KEYS: counters; ARGV: window per key in ms. Returns {count, ms left} per key.
_HIT = """
local out = {}
for i, key in ipairs(KEYS) do
  local count = redis.call('INCR', key)
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then
    ttl = tonumber(ARGV[i])
    redis.call('PEXPIRE', key, ttl)
  end
  out[i] = {count, ttl}
end
return out
"""


@dataclass(frozen=True, slots=True)
class Limit:
    key: str  # full Redis key (with the namespace prefix)
    rate: Rate


async def hit(redis: Redis, limits: Sequence[Limit]) -> None:
    """Count one attempt against every limit; ``RateLimited`` if any is exceeded."""
    if not limits:
        return
    script = redis.register_script(_HIT)
    results = await script(
        keys=[limit.key for limit in limits],
        args=[limit.rate.per_s * 1000 for limit in limits],
    )
    waits = [
        int(ttl_ms)
        for (count, ttl_ms), limit in zip(results, limits, strict=True)
        if int(count) > limit.rate.count
    ]
    if waits:
        retry_after = max(1, math.ceil(max(waits) / 1000))
        raise RateLimited(
            f"too many attempts; try again in {retry_after} s", retry_after=retry_after
        )


def per_ip(ctx: Context, action: str, rate: Rate) -> list[Limit]:
    """The caller's per-IP limit for ``action``, when the hub told us the IP."""
    if ctx.caller.ip is None:
        return []
    return [Limit(ctx.keys.key("rl", action, "ip", ctx.caller.ip), rate)]


def per_account(ctx: Context, action: str, email: str, rate: Rate) -> Limit:
    """The per-account limit for ``action``, keyed by the email whether or not an account
    has it (so the limit itself reveals nothing), hashed so keys carry no addresses."""
    digest = hashlib.sha256(email.encode()).hexdigest()[:32]
    return Limit(ctx.keys.key("rl", action, "acct", digest), rate)
