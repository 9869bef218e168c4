"""Telling every hub that access was taken away: the deny-list in Redis, and a control
message on ``ctl.user.<id>`` (shapes in ``hubbub.contracts.control``).

Both happen after the transaction that revoked commits — the database stays the truth,
and a rolled-back revocation never logs anyone out. An entry matters until every access
token that could carry it has expired: now + the access token's lifetime + the clock
leeway (+ a small margin); Redis entries past that are pruned on every write.

The deny-list write must not be lost when Redis is unreachable (a logout-all or a
deactivation during an outage): it is kept in PostgreSQL in the revoking transaction
(``handlers/invalidations.py``, ``durable=True``) and the workers' redo loop writes it
again as soon as Redis answers — the hubs reload the deny-list from Redis, e.g. after a
reconnect. A redo is idempotent: a revoked session is never un-revoked, so adding it
again only extends its entry; a user's entry is set from the user's current state in the
database (deactivated: added; active again: removed), so a late redo of a deactivation
cannot undo a reactivation that followed it.

The control message that takes access away does not wait for Redis: after-commit actions
run in order, and it is queued before the deny-list write, so a Redis that hangs (or
fails) delays only the write, which its durable row covers. A reactivation's message goes
after its Redis write instead: it gives access back, which may wait, and a hub that
reloaded Redis in between would deny the user again until its next load.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from redis.asyncio import Redis
from sqlalchemy import select

from handlers import invalidations
from handlers.accounts.models import User
from handlers.context import Context
from hubbub.config import Settings
from hubbub.contracts.control import (
    DEACTIVATED_USERS,
    REVOKED_SESSIONS,
    Deactivated,
    Reactivated,
    SessionsRevoked,
)
from hubbub.keys import RedisKeys

MARGIN_S = 5
SESSIONS = "revoked_sessions"  # invalidation kinds
USER = "user_access"


def deny_until(settings: Settings) -> float:
    return time.time() + settings.access_token_ttl_s + settings.jwt_leeway_s + MARGIN_S


async def _deny(redis: Redis, key: str, members: dict[str, float]) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zadd(key, members)
        pipe.zremrangebyscore(key, "-inf", time.time())
        await pipe.execute()


@invalidations.kind(SESSIONS)
async def _redo_sessions(target: invalidations.RedoTarget, payload: dict[str, Any]) -> None:
    sids = [str(sid) for sid in payload["sids"]]
    if sids:
        key = target.keys.key(*REVOKED_SESSIONS)
        await _deny(target.redis, key, dict.fromkeys(sids, deny_until(target.settings)))


@invalidations.kind(USER)
async def _redo_user(target: invalidations.RedoTarget, payload: dict[str, Any]) -> None:
    # The row stays locked until the Redis write is done, so a change of is_active that
    # commits meanwhile writes Redis after us.
    user_id = str(payload["user_id"])
    active = await target.session.scalar(
        select(User.is_active).where(User.id == uuid.UUID(user_id)).with_for_update(read=True)
    )
    await _set_user(target.redis, target.keys, target.settings, user_id, denied=active is False)


async def _set_user(
    redis: Redis, keys: RedisKeys, settings: Settings, user_id: str, *, denied: bool
) -> None:
    key = keys.key(*DEACTIVATED_USERS)
    if denied:
        await _deny(redis, key, {user_id: deny_until(settings)})
    else:
        await redis.zrem(key, user_id)


def sessions_revoked(ctx: Context, user_id: str, sids: Sequence[str]) -> None:
    """After commit: deny-list ``sids`` and tell the hubs."""
    if not sids:
        return
    until = deny_until(ctx.settings)
    _tell_sessions_revoked(ctx, user_id, sids, until)  # first: see the module's docstring
    _deny_sessions(ctx, sids, until)


def user_deactivated(ctx: Context, user_id: str, sids: Sequence[str] = ()) -> None:
    """After commit: deny-list the user and ``sids`` (the sessions the deactivation
    ended), and tell the hubs — both messages before any of the Redis work, so that the
    sessions' revocation does not wait behind the user's write: a reactivation while
    Redis hangs would otherwise let those sessions' tokens in again until it came.
    "Deactivated" goes first: the hubs close the user's sockets with 4003 (final), not
    4001 (sign in again)."""
    _publish_after_commit(
        ctx,
        user_id,
        lambda: Deactivated(user_id=user_id, until=deny_until(ctx.settings)).model_dump(),
    )
    until = deny_until(ctx.settings)
    if sids:
        _tell_sessions_revoked(ctx, user_id, sids, until)
    invalidations.after_commit(
        ctx,
        USER,
        {"user_id": user_id},
        lambda: _set_user(ctx.redis, ctx.keys, ctx.settings, user_id, denied=True),
        durable=True,
    )
    if sids:
        _deny_sessions(ctx, sids, until)


def _tell_sessions_revoked(ctx: Context, user_id: str, sids: Sequence[str], until: float) -> None:
    message = SessionsRevoked(user_id=user_id, sids=tuple(sids), until=until)
    _publish_after_commit(ctx, user_id, lambda: message.model_dump(mode="json"))


def _deny_sessions(ctx: Context, sids: Sequence[str], until: float) -> None:
    key = ctx.keys.key(*REVOKED_SESSIONS)
    invalidations.after_commit(
        ctx,
        SESSIONS,
        {"sids": list(sids)},
        lambda: _deny(ctx.redis, key, dict.fromkeys(sids, until)),
        durable=True,
    )


def user_reactivated(ctx: Context, user_id: str) -> None:
    invalidations.after_commit(
        ctx,
        USER,
        {"user_id": user_id},
        lambda: _set_user(ctx.redis, ctx.keys, ctx.settings, user_id, denied=False),
        durable=True,
    )
    _publish_after_commit(ctx, user_id, lambda: Reactivated(user_id=user_id).model_dump())


def _publish_after_commit(
    ctx: Context, user_id: str, message: Callable[[], dict[str, Any]]
) -> None:
    publish = ctx.publish
    if publish is None:
        return

    async def tell() -> None:
        await publish(ctx.subjects.control_user(user_id), orjson.dumps(message()))

    ctx.after_commit(tell)
