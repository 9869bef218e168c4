"""``members.list``, ``members.add``, ``members.update``, ``members.remove``,
``members.leave``. ``members.add`` invites (``invitations.invite``): people join only by
accepting.

Every change locks the workspace row first (``access.locked``), so changes to one
workspace's membership run one at a time across all workers: "at least one owner" is
counted under that lock, and channel answers cached by ``channels.authorize`` are
dropped after each change commits (``acl.membership_changed``).
"""

from __future__ import annotations

import uuid

from sqlalchemy import select, tuple_

from handlers.accounts.models import User
from handlers.context import Context
from handlers.pagination import cursor_str, cursor_uuid, decode_cursor, encode_cursor
from handlers.registry import Registry
from handlers.workspaces import access, membership
from handlers.workspaces.cache import cache_for, params_digest
from handlers.workspaces.invitations import invite, may_grant
from handlers.workspaces.models import Member
from handlers.workspaces.views import member_public
from hubbub.contracts.api import members as api
from hubbub.contracts.api.members import (
    AddOutcome,
    LeaveParams,
    MemberAdd,
    MemberAdded,
    MemberListParams,
    MemberPage,
    MemberPublic,
    MemberRef,
    MemberUpdate,
)
from hubbub.contracts.api.workspaces import WorkspaceRole
from hubbub.contracts.errors import NotFound
from hubbub.contracts.operations import Empty

registry = Registry()
CURSOR_SCOPE = "members"


@registry.handler(api.list_members)
async def list_members(ctx: Context, params: MemberListParams) -> MemberPage:
    await access.require(ctx, params.workspace_id, access.READ)
    cache = cache_for(ctx, params.workspace_id)
    first_page = params.cursor is None
    name = ("members", params_digest(params))
    if first_page and (cached := await cache.get(MemberPage, *name)) is not None:
        return cached
    statement = (
        select(Member, User)
        .join(User, User.id == Member.user_id)
        .where(Member.workspace_id == params.workspace_id)
    )
    if params.role is not None:
        statement = statement.where(Member.role == params.role.value)
    if params.cursor:
        email, user_id = decode_cursor(params.cursor, CURSOR_SCOPE, 2)
        statement = statement.where(
            tuple_(User.email, Member.user_id) > tuple_(cursor_str(email), cursor_uuid(user_id))
        )
    rows = (
        await ctx.session.execute(
            statement.order_by(User.email, Member.user_id).limit(params.limit + 1)
        )
    ).all()
    items = [member_public(m, u) for m, u in rows[: params.limit]]
    page = MemberPage(
        items=items,
        next_cursor=encode_cursor(CURSOR_SCOPE, items[-1].email, str(items[-1].user_id))
        if len(rows) > params.limit and items
        else None,
    )
    if first_page:
        await cache.put(page, *name)
    return page


@registry.handler(api.add)
async def add(ctx: Context, params: MemberAdd) -> MemberAdded:
    _, my_role = await access.locked(ctx, params.workspace_id, access.MANAGE)
    may_grant(my_role, params.role)
    # Never a member at once, even for an existing account: the person consents by
    # accepting (signed in, email verified), and the answer does not say whether the
    # email has an account.
    invitation = await invite(ctx, params.workspace_id, params.email, params.role, my_role)
    return MemberAdded(status=AddOutcome.INVITED, invitation=invitation)


@registry.handler(api.update)
async def update(ctx: Context, params: MemberUpdate) -> MemberPublic:
    _, my_role = await access.locked(ctx, params.workspace_id, access.MANAGE)
    member, user = await _member(ctx, params.workspace_id, params.user_id)
    before = WorkspaceRole(member.role)
    if WorkspaceRole.OWNER in (before, params.role):
        may_grant(my_role, WorkspaceRole.OWNER)
    if before is WorkspaceRole.OWNER and params.role is not WorkspaceRole.OWNER:
        await membership.keep_an_owner(ctx, params.workspace_id)
    return await membership.set_role(ctx, member, user, params.role)


@registry.handler(api.remove)
async def remove(ctx: Context, params: MemberRef) -> Empty:
    _, my_role = await access.locked(ctx, params.workspace_id, access.MANAGE)
    member, user = await _member(ctx, params.workspace_id, params.user_id)
    if member.role == WorkspaceRole.OWNER:
        may_grant(my_role, WorkspaceRole.OWNER)
    await membership.drop(ctx, member, user)
    return Empty()


@registry.handler(api.leave)
async def leave(ctx: Context, params: LeaveParams) -> Empty:
    await access.locked(ctx, params.workspace_id, access.READ)
    member, user = await _member(ctx, params.workspace_id, uuid.UUID(ctx.user_id))
    await membership.drop(ctx, member, user)
    return Empty()


async def _member(ctx: Context, workspace_id: uuid.UUID, user_id: uuid.UUID) -> tuple[Member, User]:
    row = (
        await ctx.session.execute(
            select(Member, User)
            .join(User, User.id == Member.user_id)
            .where(Member.workspace_id == workspace_id, Member.user_id == user_id)
        )
    ).first()
    if row is None:
        raise NotFound("no such member in this workspace")
    return row[0], row[1]
