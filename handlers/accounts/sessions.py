"""Sessions: starting one (login), rotating its refresh token, ending it.

Issuing is the workers' half of ``hubbub.tokens``: the access token carries the
session's id as ``sid``; the refresh token is 256 random bits handed out once and kept
only as its SHA-256 digest.

Rotation locks the presented token's row (``FOR UPDATE``), then its session's, so two
refreshes of one token — from any worker processes — run one after the other: the
second finds the token used. That is the theft signal: a used token comes back only if
someone kept a copy. The whole session is revoked and the revocation is committed at
once, before answering 401, so both holders — thief and owner — are signed out.
Clients must therefore refresh one at a time (the SPA keeps a single in-flight refresh).

One exception, for a client whose refresh never reached it (the hub answered 504, the
connection dropped) and that tries again with the token it still holds: the token that
was rotated last may be presented again within ``refresh_retry_grace_s`` of its
rotation, as long as no later token of the session has been used. That retry gets a
fresh pair and spends the unused successor, so presenting the successor afterwards is
reuse (and ends the session): a thief who races the owner within the grace is still
found out, at the owner's next refresh. A rotation whose caller has stopped waiting
(``ctx.deadline`` has passed) is not committed at all: it answers ``timeout``.

Refreshing slides a session forward, but never past ``session_max_age_s`` from its
start: the last refresh token of a session expires when the session does, and a token
presented after that is ``expired``. A stolen, diligently refreshed session ends too.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select, update

from handlers.accounts import revocation
from handlers.accounts.models import AuthSession, RefreshToken, User
from handlers.accounts.users import by_id, to_public
from handlers.context import Context
from handlers.worker_resources import ResourceKey
from hubbub.contracts.api.auth import TokenPair
from hubbub.contracts.errors import Timeout, Unauthorized
from hubbub.tokens import AccessTokens, new_opaque_token

log = logging.getLogger(__name__)

ACCESS_TOKENS: ResourceKey[AccessTokens] = ResourceKey(
    "access_tokens", lambda settings: AccessTokens.from_settings(settings, signing=True)
)


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def now() -> datetime:
    return datetime.now(UTC)


async def start(ctx: Context, user: User) -> TokenPair:
    """A new session for ``user`` (already authenticated, its row locked): its first pair
    of tokens. Past ``max_sessions_per_user`` live sessions, the least recently used
    (last refreshed, else started) end, deny-listed like a logout."""
    at = now()
    session = AuthSession(id=uuid.uuid4(), user_id=user.id, created_ip=ctx.caller.ip, created_at=at)
    ctx.session.add(session)
    await ctx.session.flush()
    past_the_cap = await ctx.session.scalars(
        select(AuthSession.id)
        .where(
            AuthSession.user_id == user.id,
            AuthSession.revoked_at.is_(None),
            AuthSession.id != session.id,
            AuthSession.created_at > at - timedelta(seconds=ctx.settings.session_max_age_s),
        )
        .order_by(
            func.coalesce(AuthSession.last_refreshed_at, AuthSession.created_at).desc(),
            AuthSession.id,
        )
        .offset(ctx.settings.max_sessions_per_user - 1)
    )
    oldest = list(past_the_cap)
    if oldest:
        await revoke(ctx, user.id, reason="session_limit", among=oldest)
    pair = await _issue(ctx, user, session)
    still_awaited(ctx)
    return pair


async def rotate(ctx: Context, presented: str) -> TokenPair:
    """Trade a refresh token for a new pair; see the module docstring for reuse."""
    token = (
        await ctx.session.execute(
            select(RefreshToken)
            .where(RefreshToken.token_hash == digest(presented))
            .with_for_update()
        )
    ).scalar_one_or_none()
    if token is None:
        raise Unauthorized("the refresh token is not valid", reason="unknown")
    session = await ctx.session.get(
        AuthSession, token.session_id, with_for_update=True, populate_existing=True
    )
    assert session is not None  # the foreign key cascades
    if session.revoked_at is not None:
        raise Unauthorized("this session has ended; sign in again", reason="revoked")
    at = now()
    retry = token.used_at is not None and is_retry(ctx, token, session, at)
    if token.used_at is not None and not retry:
        await revoke(ctx, session.user_id, reason="refresh_token_reuse", only=session.id)
        await ctx.commit()  # the revocation must stick although this request fails
        log.warning(
            "refresh token reused: session revoked",
            extra={"user_id": str(session.user_id), "sid": str(session.id)},
        )
        raise Unauthorized(
            "this refresh token was already used; the session has been ended for safety",
            reason="reused",
        )
    if token.expires_at <= at or ends(ctx, session) <= at:
        raise Unauthorized("the refresh token has expired; sign in again", reason="expired")
    user = await by_id(ctx.session, session.user_id)
    if not user.is_active:
        raise Unauthorized("this account is deactivated", reason="deactivated")
    if retry:
        # The successor the caller never received is spent: presenting it now is reuse.
        # The retried token stays the last rotated one, so a second retry works too.
        await ctx.session.execute(
            update(RefreshToken)
            .where(RefreshToken.session_id == session.id, RefreshToken.used_at.is_(None))
            .values(used_at=at)
        )
        log.info(
            "refresh token presented again within the retry grace: a new pair issued",
            extra={"user_id": str(session.user_id), "sid": str(session.id)},
        )
    else:
        token.used_at = at
        session.last_refreshed_at = at
    # Used tokens are kept until they expire, to recognise their reuse; then they go.
    await ctx.session.execute(
        delete(RefreshToken).where(
            RefreshToken.session_id == session.id, RefreshToken.expires_at < at
        )
    )
    pair = await _issue(ctx, user, session)
    still_awaited(ctx)
    return pair


def is_retry(ctx: Context, token: RefreshToken, session: AuthSession, at: datetime) -> bool:
    """Whether the used ``token`` comes back as a retry of its own rotation (the module's
    docstring): it was the session's last rotation (no later token has been used since:
    each rotation sets both times alike), within ``refresh_retry_grace_s``."""
    used_at = token.used_at
    return (
        used_at is not None
        and used_at == session.last_refreshed_at
        and at - used_at <= timedelta(seconds=ctx.settings.refresh_retry_grace_s)
    )


def still_awaited(ctx: Context) -> None:
    """``Timeout`` once the caller has stopped waiting (its hub answered 504): tokens it
    never receives must not be committed — its retry with the token it holds would look
    like theft. Called last, before the runtime commits."""
    if ctx.deadline is not None and time.time() >= ctx.deadline:
        raise Timeout("the request expired before its tokens were issued")


async def revoke(
    ctx: Context,
    user_id: uuid.UUID,
    *,
    reason: str,
    only: uuid.UUID | None = None,
    among: Sequence[uuid.UUID] | None = None,
    keep: uuid.UUID | None = None,
    tell: bool = True,
) -> list[str]:
    """End the user's live sessions (just ``only``, those ``among``, or all but ``keep``);
    after commit the hubs deny their access tokens (unless not ``tell``: the caller has
    ``revocation`` do it). Returns the ended session ids."""
    statement = update(AuthSession).where(
        AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None)
    )
    if only is not None:
        statement = statement.where(AuthSession.id == only)
    if among is not None:
        statement = statement.where(AuthSession.id.in_(among))
    if keep is not None:
        statement = statement.where(AuthSession.id != keep)
    result = await ctx.session.execute(
        statement.values(revoked_at=now(), revoked_reason=reason).returning(AuthSession.id)
    )
    sids = [str(sid) for sid in result.scalars()]
    if tell:
        revocation.sessions_revoked(ctx, str(user_id), sids)
    return sids


async def session_of_refresh_token(ctx: Context, presented: str) -> AuthSession | None:
    token = await ctx.session.get(RefreshToken, digest(presented))
    if token is None:
        return None
    return await ctx.session.get(AuthSession, token.session_id)


def ends(ctx: Context, session: AuthSession) -> datetime:
    """When the session is over, however often it is refreshed."""
    return session.created_at + timedelta(seconds=ctx.settings.session_max_age_s)


async def _issue(ctx: Context, user: User, session: AuthSession) -> TokenPair:
    settings = ctx.settings
    refresh = new_opaque_token()
    at = now()
    expires_at = min(at + timedelta(seconds=settings.refresh_token_ttl_s), ends(ctx, session))
    ctx.session.add(
        RefreshToken(token_hash=digest(refresh), session_id=session.id, expires_at=expires_at)
    )
    access = ctx.resource(ACCESS_TOKENS).issue(
        user_id=str(user.id), role=user.role, session_id=str(session.id)
    )
    await ctx.session.flush()
    return TokenPair(
        access_token=access.token,
        expires_in=access.expires_in,
        refresh_token=refresh,
        refresh_expires_in=max(0, int((expires_at - at).total_seconds())),
        user=to_public(user),
    )
