"""Rate limits in Redis, shared by every worker process.

A fixed window that opens at the first attempt: ``INCR`` a counter per (action, who),
give it the window's TTL when it is new, refuse once the count passes the limit, and
say how long until the window closes (``Retry-After``). One Lua script checks several
limits at once (say per IP and per account), atomically. The cost of the simplicity: at
a window's edge a client may get up to twice the limit within a short span — fine for
slowing down guessing, which is what these limits are for.

Limits that should count failures only (sign-in) count every attempt with ``hit`` and
take a successful one back with ``forgive``; ``within`` counts a quiet budget (no 429).
Per-IP keys use ``ip_key``: an IPv6 address by its /64. ``remember_ip``/``is_known_ip``
record the IPs that signed in to an account, which its per-account limits spare (the
lock-out policy in docs/auth.md).

While Redis is unreachable, or answers but takes no writes (out of memory, unable to
persist: what ``redis_outage`` counts), the same windows are counted in this process's
memory (``LocalWindows``): limits still hold, per worker process instead of for all of them
(with N workers a client gets up to N times the limit), and signing in keeps working.
Neither failing open (no limit at all while Redis is down: free guessing for anyone who
can make it so) nor failing closed (no sign-in at all) — see "When a dependency is
down" in docs/architecture.md. One warning when this starts, one line when it ends.

Memory is bounded: an attempt refused by one limit opens no window for the limits after
it (per IP comes first: one IP trying many accounts opens no window per account once it
is refused), and past 100,000 open windows a newcomer is counted in a window it shares
with the others of its bucket (one of 64 per limit, by a hash of its key). That is the
trade-off: while a flood of distinct keys (many IPs) lasts, a newcomer may be refused
for the attempts of others in its bucket — never everyone for one flooder's.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from handlers.context import Context
from hubbub.config import Rate
from hubbub.contracts.errors import RateLimited
from hubbub.dependencies import redis_outage

log = logging.getLogger(__name__)

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


@dataclass(slots=True)
class _Shared:
    """A window shared by the keys past the cap that fall in one bucket of a limit."""

    count: int
    closes_at: float
    counted: dict[str, int]  # the keys counted in it (as many as are remembered): forgive


class LocalWindows:
    """The fixed windows of ``_HIT``, kept in this process: the limits while Redis is
    unreachable. Bounded, at O(1) a hit: past ``max_keys`` open windows a key that has none
    is counted in a window it shares with the keys of its limit (its ``Rate``) that fall in
    the same of ``buckets`` buckets (by a hash of the key, unpredictable from outside this
    process), until windows close — nobody's open window is dropped, so a flood of
    distinct keys neither resets an account's lock-out nor its own per-IP counts. The
    trade-off: while such a flood lasts, a new key may be refused for attempts of others
    in its bucket; one flooding key spends only its own bucket's window, not every
    newcomer's."""

    def __init__(
        self,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
        *,
        buckets: int = 64,
    ) -> None:
        self.max_keys = max_keys
        self.clock = clock
        self.buckets = buckets
        self.degraded = False  # whether the last attempt found Redis unreachable
        # Per window length: key → [count, closes at]. Windows of one length close in the
        # order they opened, which is the map's order: the closed ones are at its front.
        self._windows: dict[int, OrderedDict[str, list[float]]] = {}
        self._size = 0
        # Past max_keys: windows shared per (limit, bucket); of the keys counted in them,
        # up to a tenth as many are remembered, so that only those are forgiven there.
        self._shared: dict[tuple[Rate, int], _Shared] = {}
        self._max_remembered = max(16, max_keys // 10)
        self._remembered = 0
        self._next_forget = math.inf  # when the first shared window that remembers keys closes

    def bucket(self, key: str) -> int:
        """Which shared window of its limit ``key`` is counted in, past the cap."""
        return hash(key) % self.buckets

    def hit(self, key: str, rate: Rate) -> tuple[int, int]:
        """Count one attempt; returns the window's count and its milliseconds left."""
        now = self.clock()
        windows = self._windows.get(rate.per_s)
        if windows is None:
            windows = self._windows[rate.per_s] = OrderedDict()
        self._close(windows, now)
        window = windows.get(key)
        if window is None:
            if self._size >= self.max_keys:
                for others in self._windows.values():
                    self._close(others, now)
            if self._size < self.max_keys:
                window = windows[key] = [0, now + rate.per_s]
                self._size += 1
            else:
                return self._hit_shared(key, rate, now)
        window[0] += 1
        return int(window[0]), max(1, math.ceil((window[1] - now) * 1000))

    def hit_all(self, attempts: Sequence[tuple[str, Rate]]) -> list[tuple[int, int]]:
        """``hit`` each (key, rate) in turn until one is exceeded: the attempt is refused
        then, and counts against none after it (no window opens for them): (0, 0)."""
        results: list[tuple[int, int]] = []
        refused = False
        for key, rate in attempts:
            if refused:
                results.append((0, 0))
                continue
            count, ms_left = self.hit(key, rate)
            results.append((count, ms_left))
            refused = count > rate.count
        return results

    def forgive(self, key: str, rate: Rate) -> None:
        """Take one attempt back from ``key``'s window, if it is still open (the shared
        one it was counted in, if it was counted in one and is remembered there)."""
        now = self.clock()
        windows = self._windows.get(rate.per_s)
        window = windows.get(key) if windows is not None else None
        if window is not None:
            if window[0] > 0 and now < window[1]:
                window[0] -= 1
            return
        shared = self._shared.get((rate, self.bucket(key)))
        if shared is None or shared.closes_at <= now:
            return
        times = shared.counted.get(key)
        if times:
            shared.count -= 1
            if times > 1:
                shared.counted[key] = times - 1
            else:
                del shared.counted[key]
                self._remembered -= 1

    def _hit_shared(self, key: str, rate: Rate, now: float) -> tuple[int, int]:
        slot = (rate, self.bucket(key))
        shared = self._shared.get(slot)
        if shared is None or shared.closes_at <= now:
            if shared is not None:
                self._remembered -= len(shared.counted)
            shared = self._shared[slot] = _Shared(0, now + rate.per_s, {})
        shared.count += 1
        if key in shared.counted:
            shared.counted[key] += 1
        else:
            if self._remembered >= self._max_remembered and now >= self._next_forget:
                self._forget_closed(now)  # only once a window that remembers keys closed
            if self._remembered < self._max_remembered:
                shared.counted[key] = 1
                self._remembered += 1
                self._next_forget = min(self._next_forget, shared.closes_at)
        return shared.count, max(1, math.ceil((shared.closes_at - now) * 1000))

    def _forget_closed(self, now: float) -> None:
        """Drop the shared windows that have closed (and the keys they remember)."""
        self._next_forget = math.inf
        for slot, shared in list(self._shared.items()):
            if shared.closes_at <= now:
                self._remembered -= len(shared.counted)
                del self._shared[slot]
            elif shared.counted:
                self._next_forget = min(self._next_forget, shared.closes_at)

    def _close(self, windows: OrderedDict[str, list[float]], now: float) -> None:
        """Drop the closed windows at the front of ``windows``."""
        while windows:
            key, window = next(iter(windows.items()))
            if window[1] > now:
                return
            del windows[key]
            self._size -= 1


LOCAL = LocalWindows()  # this process's: what a worker counts while Redis is away


async def _count(redis: Redis, limits: Sequence[Limit], local: LocalWindows) -> list[int]:
    """Count one attempt against every limit; the milliseconds to wait for each one
    that is exceeded."""
    script = redis.register_script(_HIT)
    try:
        results = await script(
            keys=[limit.key for limit in limits],
            args=[limit.rate.per_s * 1000 for limit in limits],
        )
    except Exception as exc:
        if redis_outage(exc) is None:
            raise
        _degraded(local, exc)
        results = local.hit_all([(limit.key, limit.rate) for limit in limits])
    else:
        _shared_again(local)
    return [
        int(ttl_ms)
        for (count, ttl_ms), limit in zip(results, limits, strict=True)
        if int(count) > limit.rate.count
    ]


def _degraded(local: LocalWindows, exc: BaseException) -> None:
    if not local.degraded:
        local.degraded = True
        log.warning(
            "rate limits count per worker process while Redis is unreachable or takes no"
            " writes: %s: %s",
            type(exc).__name__,
            exc,
        )


def _shared_again(local: LocalWindows) -> None:
    if local.degraded:
        local.degraded = False
        log.info("rate limits are shared again: Redis answers")


async def hit(redis: Redis, limits: Sequence[Limit], local: LocalWindows = LOCAL) -> None:
    """Count one attempt against every limit; ``RateLimited`` if any is exceeded."""
    if not limits:
        return
    waits = await _count(redis, limits, local)
    if waits:
        retry_after = max(1, math.ceil(max(waits) / 1000))
        raise RateLimited(
            f"too many attempts; try again in {retry_after} s", retry_after=retry_after
        )


async def within(redis: Redis, limits: Sequence[Limit], local: LocalWindows = LOCAL) -> bool:
    """Count one attempt against every limit; whether all of them still allow it (for a
    budget that is spent quietly, where a 429 would say too much)."""
    return not limits or not await _count(redis, limits, local)


# KEYS: counters. Takes one attempt back from each counter that still exists.
_FORGIVE = """
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) then redis.call('DECR', key) end
end
return 0
"""


async def forgive(redis: Redis, limits: Sequence[Limit], local: LocalWindows = LOCAL) -> None:
    """Take back the attempt ``hit`` counted: limits that count failures count every
    attempt first (so parallel guesses cannot all pass the check before any of them
    failed) and forgive the ones that succeed."""
    if not limits:
        return
    try:
        await redis.register_script(_FORGIVE)(keys=[limit.key for limit in limits])
    except Exception as exc:
        if redis_outage(exc) is None:
            raise
        _degraded(local, exc)
        for limit in limits:
            local.forgive(limit.key, limit.rate)


def ip_key(ip: str) -> str:
    """What a per-IP limit is keyed by: an IPv4 address (also one written IPv4-mapped,
    ``::ffff:a.b.c.d``), or the /64 of an IPv6 address — one subscriber line or host
    usually has a whole /64, so keying /128 would give it 2^64 separate budgets."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def per_ip(ctx: Context, action: str, rate: Rate) -> list[Limit]:
    """The caller's per-IP limit for ``action``, when the hub told us the IP."""
    if ctx.caller.ip is None:
        return []
    return [Limit(ctx.keys.key("rl", action, "ip", ip_key(ctx.caller.ip)), rate)]


def account_digest(email: str) -> str:
    """An email as keys carry it: hashed, so no key holds an address."""
    return hashlib.sha256(email.encode()).hexdigest()[:32]


def per_account(ctx: Context, action: str, email: str, rate: Rate) -> Limit:
    """The per-account limit for ``action``, keyed by the email whether or not an account
    has it (so the limit itself reveals nothing), hashed so keys carry no addresses."""
    return Limit(ctx.keys.key("rl", action, "acct", account_digest(email)), rate)


def per_account_ip(ctx: Context, action: str, email: str, rate: Rate) -> list[Limit]:
    """The limit for ``action`` on one account from the caller's IP: what one stranger
    may try on it, without touching what its owner (elsewhere) may."""
    if ctx.caller.ip is None:
        return []
    return [
        Limit(
            ctx.keys.key("rl", action, "acct-ip", account_digest(email), ip_key(ctx.caller.ip)),
            rate,
        )
    ]


def _known_key(ctx: Context, email: str) -> str | None:
    if ctx.caller.ip is None:
        return None
    return ctx.keys.key("rl", "known", account_digest(email), ip_key(ctx.caller.ip))


async def remember_ip(ctx: Context, email: str) -> None:
    """The caller's IP signed in to this account (or proved its mailbox): for
    ``login_known_ip_ttl_s`` the per-account limits do not apply to it. Best effort:
    while Redis is away the IP is simply not remembered."""
    key = _known_key(ctx, email)
    if key is None:
        return
    try:
        await ctx.redis.set(key, b"1", ex=ctx.settings.login_known_ip_ttl_s)
    except Exception as exc:
        if redis_outage(exc) is None:
            raise


async def is_known_ip(ctx: Context, email: str) -> bool:
    """Whether the caller's IP signed in to this account lately (see ``remember_ip``);
    False while Redis is away (the per-account limit then counts per worker)."""
    key = _known_key(ctx, email)
    if key is None:
        return False
    try:
        return bool(await ctx.redis.exists(key))
    except Exception as exc:
        if redis_outage(exc) is None:
            raise
        return False
