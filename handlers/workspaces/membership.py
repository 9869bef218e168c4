"""Joining and leaving: the membership row, its journal entry, its events and the channel
permission side effects — shared by members and invitations. Callers hold the workspace
lock (``access.locked``) and have checked the caller's right to do it.
"""

from __future__ import annotations

import uuid

from sqlalchemy import delete, func, select

from handlers.accounts.models import User
from handlers.accounts.users import by_id
from handlers.context import Context
from handlers.workspaces import acl, journal
from handlers.workspaces.models import Member
from handlers.workspaces.views import member_public
from hubbub.contracts import event_types as events
from hubbub.contracts.api.members import MemberPublic
from hubbub.contracts.api.workspaces import WorkspaceRole
from hubbub.contracts.channels import Channel
from hubbub.contracts.errors import Conflict, Forbidden
from hubbub.contracts.events import EventType


async def within_quota(ctx: Context, user_id: uuid.UUID) -> None:
    """Refuse to make ``user_id`` the owner of one more workspace past the quota: one
    account owns at most ``max_workspaces_per_user``, however it comes to own them
    (creating one, accepting an owner invitation, being made an owner). The user's row is
    locked first, so two such changes at once are counted one after the other."""
    await by_id(ctx.session, user_id, lock=True)
    owned = await ctx.session.scalar(
        select(func.count())
        .select_from(Member)
        .where(Member.user_id == user_id, Member.role == WorkspaceRole.OWNER.value)
    )
    limit = ctx.settings.max_workspaces_per_user
    if (owned or 0) >= limit:
        whose = "your account" if str(user_id) == ctx.user_id else "that account"
        raise Forbidden(
            f"{whose} owns {limit} workspaces, the most an account may",
            reason="quota",
            limit=limit,
        )


async def join(
    ctx: Context, workspace_id: uuid.UUID, user: User, role: WorkspaceRole
) -> MemberPublic:
    """Make ``user`` a member (the caller holds the workspace lock and has checked)."""
    if role is WorkspaceRole.OWNER:
        await within_quota(ctx, user.id)
    member = Member(workspace_id=workspace_id, user_id=user.id, role=role.value)
    ctx.session.add(member)
    await ctx.session.flush()
    await ctx.session.refresh(member)
    public = member_public(member, user)
    _announce(ctx, events.MEMBER_ADDED, public, {"email": user.email, "role": role.value})
    return public


async def set_role(ctx: Context, member: Member, user: User, role: WorkspaceRole) -> MemberPublic:
    before = member.role
    if role is WorkspaceRole.OWNER and before != role.value:
        await within_quota(ctx, user.id)
    member.role = role.value
    member.updated_at = func.now()
    await ctx.session.flush()
    await ctx.session.refresh(member)
    public = member_public(member, user)
    # Still a member: nothing to unsubscribe, but publishing on chat may have changed.
    _announce(
        ctx,
        events.MEMBER_UPDATED,
        public,
        {"email": user.email, "role": role.value, "previous_role": before},
    )
    return public


async def drop(ctx: Context, member: Member, user: User) -> None:
    if member.role == WorkspaceRole.OWNER:
        await keep_an_owner(ctx, member.workspace_id)
    public = member_public(member, user)
    await ctx.session.execute(
        delete(Member).where(
            Member.workspace_id == member.workspace_id, Member.user_id == member.user_id
        )
    )
    _announce(
        ctx, events.MEMBER_REMOVED, public, {"email": user.email, "role": member.role}, revoked=True
    )


def _announce(
    ctx: Context,
    event: EventType,
    member: MemberPublic,
    summary: dict[str, str],
    *,
    revoked: bool = False,
) -> None:
    """What every membership change does besides the row: its journal entry (which feeds
    the workspace channel), the member's own notification, and the channel permissions —
    those first: after-commit actions run in order, and the hubs' control message must
    not wait behind the journal's cache bump in Redis (``acl.py``)."""
    acl.membership_changed(ctx, member.workspace_id, [member.user_id], revoked=revoked)
    data = member.model_dump(mode="json")
    journal.record(
        ctx,
        member.workspace_id,
        event,
        subject_type="member",
        subject_id=member.user_id,
        data=data,
        summary=summary,
    )
    ctx.emit(Channel.user(member.user_id), event, data)


async def keep_an_owner(ctx: Context, workspace_id: uuid.UUID) -> None:
    owners = await ctx.session.scalar(
        select(func.count())
        .select_from(Member)
        .where(Member.workspace_id == workspace_id, Member.role == WorkspaceRole.OWNER.value)
    )
    if (owners or 0) <= 1:
        raise Conflict("a workspace keeps at least one owner: make someone else owner first")
