"""``auth.register``, ``auth.login``, ``auth.refresh``, ``auth.logout``, ``auth.logout_all``."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator

from handlers import ratelimit
from handlers.accounts import sessions, verification
from handlers.accounts.passwords import PASSWORD_HASHER, Match
from handlers.accounts.policy import check_password
from handlers.accounts.users import by_email, by_id, current_user, try_insert_user
from handlers.context import Context
from handlers.db import transaction_conflict
from handlers.mail import send_mail
from handlers.outages import classify
from handlers.ratelimit import Limit, per_account, per_account_ip, per_ip
from handlers.registry import Registry
from hubbub.config import Rate
from hubbub.contracts.api import auth as api
from hubbub.contracts.api.auth import LoginParams, LogoutParams, RefreshParams, RegisterParams
from hubbub.contracts.errors import Forbidden, Timeout, Unauthorized, Unavailable
from hubbub.contracts.operations import Empty, NoParams

log = logging.getLogger(__name__)
registry = Registry()
WRONG_CREDENTIALS = "wrong email or password"


def not_the_callers_doing(exc: BaseException) -> bool:
    """Whether a request failed for a reason of ours, not the caller's: a dependency away
    (PostgreSQL, Redis, NATS), a conflict PostgreSQL settled, a busy worker, the deadline."""
    return (
        isinstance(exc, Unavailable | Timeout)
        or classify(exc) is not None
        or transaction_conflict(exc)
    )


@contextlib.asynccontextmanager
async def given_back_on_outage(ctx: Context, counted: list[Limit]) -> AsyncIterator[list[Limit]]:
    """Take back the attempts in ``counted`` if what follows fails for a reason of ours
    (``not_the_callers_doing``): the request did nothing, and a budget an outage used up
    would refuse its owner once it is over. The list may change meanwhile (limits
    forgiven already leave it, others join)."""
    try:
        yield counted
    except Exception as exc:
        if counted and not_the_callers_doing(exc):
            try:
                await ratelimit.forgive(ctx.redis, counted)
            except Exception as forgiving:  # the request's own failure is what to answer
                log.debug("could not take back a counted attempt: %r", forgiving)
        raise


@registry.handler(api.register)
async def register(ctx: Context, params: RegisterParams) -> api.RegisterAccepted:
    """The same answer for a new and a taken email, after the same work: a new account
    gets a verification link, the owner of a taken address a note (at most
    ``rate_register_account`` an hour, so nobody can flood a mailbox through here)."""
    counted = per_ip(ctx, "register", ctx.settings.rate_register_ip)
    await ratelimit.hit(ctx.redis, counted)
    async with given_back_on_outage(ctx, counted):
        check_password(params.password, params.email)
        async with ctx.outside_transaction():  # argon2 holds no transaction slot
            password_hash = await ctx.resource(PASSWORD_HASHER).hash(params.password)
        user = await try_insert_user(
            ctx.session,
            email=params.email,
            password_hash=password_hash,
            display_name=params.display_name,
        )
    if user is not None:
        verification.start(ctx, user)
    elif await ratelimit.within(
        ctx.redis,
        [per_account(ctx, "register", params.email, ctx.settings.rate_register_account)],
    ):
        send_mail(ctx, verification.already_registered_mail(ctx, params.email))
    return api.RegisterAccepted()


async def count_attempt(
    ctx: Context, action: str, email: str, *, ip: Rate, account_ip: Rate, account: Rate
) -> list[Limit]:
    """Count a sign-in (or reset) attempt (docs/auth.md, "Lock-out policy"); returns the
    limits it was counted against, ``RateLimited`` if one is exceeded.

    First per IP and per (account, IP): a stranger exhausts their own budgets, never the
    owner's. Only an attempt those let through counts per account, and only from an IP
    that has not signed in to this account lately — so a single IP adds at most its
    (account, IP) budget to the account's, and the owner at a known IP is never refused
    because of others."""
    narrow = [*per_ip(ctx, action, ip), *per_account_ip(ctx, action, email, account_ip)]
    await ratelimit.hit(ctx.redis, narrow)
    if await ratelimit.is_known_ip(ctx, email):
        return narrow
    wide = [per_account(ctx, action, email, account)]
    await ratelimit.hit(ctx.redis, wide)
    return narrow + wide


@registry.handler(api.login)
async def login(ctx: Context, params: LoginParams) -> api.TokenPair:
    # Every attempt is counted first (parallel guesses cannot all slip past the check)
    # and a successful one is taken back: the limits count failures. A worker whose
    # password hasher is full refuses first, having done nothing (the hub tries another).
    ctx.resource(PASSWORD_HASHER).check_room()
    settings = ctx.settings
    limits = await count_attempt(
        ctx,
        "login",
        params.email,
        ip=settings.rate_login_ip,
        account_ip=settings.rate_login_account_ip,
        account=settings.rate_login_account,
    )
    async with given_back_on_outage(ctx, limits):
        return await _sign_in(ctx, params, limits)


async def _sign_in(ctx: Context, params: LoginParams, limits: list[Limit]) -> api.TokenPair:
    """``login`` once the attempt is counted; ``limits``: what to take back on success.

    The password is checked holding no transaction slot, connection or transaction: the
    user is looked up in a session of its own, closed before argon2 runs (tens of
    milliseconds, longer when the hasher's threads are busy) ``outside_transaction``,
    and the request's transaction begins only after it."""
    hasher = ctx.resource(PASSWORD_HASHER)
    async with ctx.sessions() as lookup:
        found = await by_email(lookup, params.email)
        checked = (
            None if found is None else (found.id, found.password_hash, found.password_changed_at)
        )
    upgraded = None
    async with ctx.outside_transaction():
        if checked is None:
            await hasher.verify_dummy(params.password)  # as slow as a real check
            raise Unauthorized(WRONG_CREDENTIALS)
        user_id, checked_hash, password_changed_at = checked
        match = await hasher.match(checked_hash, params.password)
        if match is Match.NONE:
            raise Unauthorized(WRONG_CREDENTIALS)
        if match is Match.AS_TYPED or hasher.needs_rehash(checked_hash):
            # The password is right: a hasher too busy to upgrade its hash now leaves
            # that to a later sign-in, not this one refused "busy" after its check.
            with contextlib.suppress(Unavailable):
                upgraded = await hasher.hash(params.password)
    # Lock the row for the rest: a concurrent deactivation or password change either
    # committed before (we see it now) or waits for this session to exist (and ends it).
    # A password changed since the check refuses; a hash that merely differs does not
    # (a concurrent login of the same user stored an upgrade of the same password).
    user = await by_id(ctx.session, user_id, lock=True)
    if user.password_changed_at != password_changed_at:
        raise Unauthorized(WRONG_CREDENTIALS)
    if not user.is_active:
        raise Forbidden("this account is deactivated")
    await ratelimit.forgive(ctx.redis, limits)
    limits.clear()  # taken back: an outage from here on must not take them back again
    # Successes count too, against looser limits that are never taken back: each one
    # costs argon2 and makes a session, and knowing one password must not buy unlimited.
    succeeded = [
        *per_ip(ctx, "login-ok", ctx.settings.rate_login_success_ip),
        per_account(ctx, "login-ok", params.email, ctx.settings.rate_login_success_account),
    ]
    await ratelimit.hit(ctx.redis, succeeded)
    limits.extend(succeeded)  # unless an outage follows: then nothing happened
    await ratelimit.remember_ip(ctx, params.email)
    if upgraded is not None and user.password_hash == checked_hash:  # not upgraded meanwhile
        user.password_hash = upgraded
    user.last_login_at = sessions.now()
    return await sessions.start(ctx, user)


@registry.handler(api.refresh)
async def refresh(ctx: Context, params: RefreshParams) -> api.TokenPair:
    return await sessions.rotate(ctx, params.refresh_token)


@registry.handler(api.logout)
async def logout(ctx: Context, params: LogoutParams) -> Empty:
    """End the session the refresh token names, else the access token's session — also
    when the refresh token is unknown (a stale cookie): the caller asked to sign out."""
    if params.refresh_token is not None:
        session = await sessions.session_of_refresh_token(ctx, params.refresh_token)
        if session is not None:
            await sessions.revoke(ctx, session.user_id, reason="logout", only=session.id)
            return Empty()
        if not (ctx.caller.is_user and ctx.caller.session_id):
            raise Unauthorized("the refresh token is not valid")
    if ctx.caller.is_user and ctx.caller.session_id:
        await sessions.revoke(
            ctx,
            uuid.UUID(ctx.user_id),
            reason="logout",
            only=uuid.UUID(ctx.caller.session_id),
        )
        return Empty()
    raise Unauthorized("nothing names a session to end: send the refresh token or sign in")


@registry.handler(api.logout_all)
async def logout_all(ctx: Context, params: NoParams) -> Empty:
    user = await current_user(ctx)
    await sessions.revoke(ctx, user.id, reason="logout_all")
    return Empty()
