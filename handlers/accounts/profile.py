"""The signed-in user's own account: ``users.me``, ``users.update_me``,
``users.change_password``."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from handlers import ratelimit
from handlers.accounts import sessions
from handlers.accounts.passwords import PASSWORD_HASHER
from handlers.accounts.policy import check_password
from handlers.accounts.reset import spend_reset_tokens
from handlers.accounts.signin import given_back_on_outage
from handlers.accounts.users import current_user, current_user_public, to_public
from handlers.context import Context
from handlers.ratelimit import per_account
from handlers.registry import Registry
from handlers.workspaces.cache import invalidate_all_after_commit
from handlers.workspaces.models import Member
from hubbub.contracts import event_types as events
from hubbub.contracts.api import users as api
from hubbub.contracts.api.users import ChangePasswordParams, UpdateMeParams, UserPublic
from hubbub.contracts.channels import Channel
from hubbub.contracts.errors import Forbidden
from hubbub.contracts.operations import Empty, NoParams

registry = Registry()


@registry.handler(api.me)
async def me(ctx: Context, params: NoParams) -> UserPublic:
    return await current_user_public(ctx)


@registry.handler(api.update_me)
async def update_me(ctx: Context, params: UpdateMeParams) -> UserPublic:
    user = await current_user(ctx, lock=True)
    if params.display_name is not None and params.display_name != user.display_name:
        user.display_name = params.display_name
        public = to_public(user)
        ctx.emit(Channel.user(user.id), events.USER_UPDATED, public.model_dump(mode="json"))
        # Member lists show the name: what the workspaces cached of them goes.
        workspaces = await ctx.session.scalars(
            select(Member.workspace_id).where(Member.user_id == user.id)
        )
        invalidate_all_after_commit(ctx, list(workspaces))
        return public
    return to_public(user)


@registry.handler(api.change_password)
async def change_password(ctx: Context, params: ChangePasswordParams) -> Empty:
    """The current password is checked and the new one hashed ``outside_transaction``:
    argon2 holds no transaction slot, connection or row lock. The user is read in a
    session of its own first, and locked in the request's transaction after: a password
    changed (or reset) meanwhile means the one checked is not the current one."""
    async with ctx.sessions() as lookup:
        found = await current_user(ctx, session=lookup)
        email, checked_hash, changed_at = (
            found.email,
            found.password_hash,
            found.password_changed_at,
        )
    # Checking the current password is a guessing oracle for a stolen access token.
    counted = [per_account(ctx, "password", email, ctx.settings.rate_login_account_ip)]
    await ratelimit.hit(ctx.redis, counted)
    # Refused for a reason of ours (a full hasher: "busy", which the hub sends to
    # another worker, where it is counted again; the deadline; an outage), the attempt
    # is taken back.
    async with given_back_on_outage(ctx, counted):
        hasher = ctx.resource(PASSWORD_HASHER)
        wrong = Forbidden("the current password is wrong", field="current_password")
        async with ctx.outside_transaction():
            if not await hasher.verify(checked_hash, params.current_password):
                raise wrong
            check_password(params.new_password, email, field="new_password")
            password_hash = await hasher.hash(params.new_password)
        user = await current_user(ctx, lock=True)
        if user.password_changed_at != changed_at:
            raise wrong
        user.password_hash = password_hash
        user.password_changed_at = sessions.now()
        await spend_reset_tokens(ctx, user.id, user.password_changed_at)
        keep = ctx.caller.session_id
        await sessions.revoke(
            ctx, user.id, reason="password_changed", keep=uuid.UUID(keep) if keep else None
        )
    return Empty()
