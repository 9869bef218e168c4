"""Telling every hub that access was taken away: the deny-list in Redis, and a control
message on ``ctl.user.<id>`` (shapes in ``hubbub.contracts.control``).

Both happen after the transaction that revoked commits — the database stays the truth,
and a rolled-back revocation never logs anyone out. An entry matters until every access
token that could carry it has expired: now + the access token's lifetime + the clock
leeway (+ a small margin); Redis entries past that are pruned on every write.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import orjson

from handlers.context import Context
from hubbub.contracts.control import (
    DEACTIVATED_USERS,
    REVOKED_SESSIONS,
    Deactivated,
    Reactivated,
    SessionsRevoked,
)

MARGIN_S = 5


def deny_until(ctx: Context) -> float:
    return time.time() + ctx.settings.access_token_ttl_s + ctx.settings.jwt_leeway_s + MARGIN_S


def sessions_revoked(ctx: Context, user_id: str, sids: Sequence[str]) -> None:
    """After commit: deny-list ``sids`` and tell the hubs."""
    if not sids:
        return
    key = ctx.keys.key(*REVOKED_SESSIONS)

    async def tell() -> None:
        until = deny_until(ctx)
        async with ctx.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(key, dict.fromkeys(sids, until))
            pipe.zremrangebyscore(key, "-inf", time.time())
            await pipe.execute()
        message = SessionsRevoked(user_id=user_id, sids=tuple(sids), until=until)
        await _publish(ctx, user_id, message.model_dump(mode="json"))

    ctx.after_commit(tell)


def user_deactivated(ctx: Context, user_id: str) -> None:
    key = ctx.keys.key(*DEACTIVATED_USERS)

    async def tell() -> None:
        until = deny_until(ctx)
        async with ctx.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {user_id: until})
            pipe.zremrangebyscore(key, "-inf", time.time())
            await pipe.execute()
        await _publish(ctx, user_id, Deactivated(user_id=user_id, until=until).model_dump())

    ctx.after_commit(tell)


def user_reactivated(ctx: Context, user_id: str) -> None:
    key = ctx.keys.key(*DEACTIVATED_USERS)

    async def tell() -> None:
        await ctx.redis.zrem(key, user_id)
        await _publish(ctx, user_id, Reactivated(user_id=user_id).model_dump())

    ctx.after_commit(tell)


async def _publish(ctx: Context, user_id: str, message: dict[str, object]) -> None:
    if ctx.publish is not None:
        await ctx.publish(ctx.subjects.control_user(user_id), orjson.dumps(message))
