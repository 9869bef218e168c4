"""Admins' operations on users: ``users.list``, ``users.get``, ``users.update``.

Every handler re-checks in the database that the caller is an active admin (a token's
role may be up to one access-token lifetime stale). Changing a role or the active flag
never leaves the system without an active admin: such changes lock every active admin's
row (in id order, so concurrent changes queue rather than deadlock) and count them.
"""

from __future__ import annotations

from sqlalchemy import func, or_, select

from handlers.accounts import revocation, sessions
from handlers.accounts.models import User
from handlers.accounts.users import by_id, require_admin, to_public
from handlers.context import Context
from handlers.pagination import cursor_str, decode_cursor, encode_cursor
from handlers.registry import Registry
from hubbub.contracts import event_types as events
from hubbub.contracts.api import users as api
from hubbub.contracts.api.users import (
    ListUsersParams,
    Role,
    UpdateUserParams,
    UserIdParams,
    UserPage,
    UserPublic,
)
from hubbub.contracts.channels import Channel
from hubbub.contracts.errors import Conflict, Forbidden

registry = Registry()


CURSOR_SCOPE = "users.email"


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@registry.handler(api.list_users)
async def list_users(ctx: Context, params: ListUsersParams) -> UserPage:
    await require_admin(ctx)
    statement = select(User)
    if params.q:
        pattern = _like(params.q)
        statement = statement.where(
            or_(
                User.email.ilike(pattern, escape="\\"),
                User.display_name.ilike(pattern, escape="\\"),
            )
        )
    if params.role is not None:
        statement = statement.where(User.role == params.role.value)
    if params.is_active is not None:
        statement = statement.where(User.is_active.is_(params.is_active))
    if params.cursor:
        (email,) = decode_cursor(params.cursor, CURSOR_SCOPE, 1)
        statement = statement.where(User.email > cursor_str(email))
    rows = (
        (await ctx.session.execute(statement.order_by(User.email).limit(params.limit + 1)))
        .scalars()
        .all()
    )
    page = rows[: params.limit]
    more = len(rows) > params.limit
    return UserPage(
        items=[to_public(user) for user in page],
        next_cursor=encode_cursor(CURSOR_SCOPE, page[-1].email) if more and page else None,
    )


@registry.handler(api.get_user)
async def get_user(ctx: Context, params: UserIdParams) -> UserPublic:
    await require_admin(ctx)
    return to_public(await by_id(ctx.session, params.user_id))


@registry.handler(api.update_user)
async def update_user(ctx: Context, params: UpdateUserParams) -> UserPublic:
    caller = await require_admin(ctx)
    may_remove_an_admin = params.role is Role.MEMBER or params.is_active is False
    if may_remove_an_admin:
        admins = (
            await ctx.session.execute(
                select(User.id)
                .where(User.role == Role.ADMIN.value, User.is_active.is_(True))
                .order_by(User.id)
                .with_for_update()
            )
        ).scalars()
        if caller.id not in set(admins):  # demoted while we waited for the lock
            raise Forbidden("only admins may do this")
    user = await by_id(ctx.session, params.user_id, lock=True)
    was_active_admin = user.role == Role.ADMIN and user.is_active
    if params.role is not None:
        user.role = params.role.value
    deactivating = params.is_active is False and user.is_active
    reactivating = params.is_active is True and not user.is_active
    if params.is_active is not None:
        user.is_active = params.is_active
    if was_active_admin and not (user.role == Role.ADMIN and user.is_active):
        admins = await ctx.session.scalar(
            select(func.count())
            .select_from(User)
            .where(User.role == Role.ADMIN.value, User.is_active.is_(True))
        )
        if not admins:
            raise Conflict("the last active admin cannot be demoted or deactivated")
    if deactivating:
        # Its sessions end with it: revocation tells the hubs of both before any Redis work.
        ended = await sessions.revoke(ctx, user.id, reason="deactivated", tell=False)
        revocation.user_deactivated(ctx, str(user.id), ended)
    if reactivating:
        revocation.user_reactivated(ctx, str(user.id))
    public = to_public(user)
    ctx.emit(Channel.user(user.id), events.USER_UPDATED, public.model_dump(mode="json"))
    return public
