"""``invitations.create``, ``invitations.list``, ``invitations.revoke``,
``invitations.preview``, ``invitations.accept``, ``invitations.decline``,
``invitations.mine``, ``invitations.accept_mine``, ``invitations.decline_mine``; and ``invite``,
which ``members.add`` uses too (adding anyone by email is an invitation: nobody joins
without consent).

The token is 256 random bits, mailed in a link (``/invitations#token=…``, in the
fragment so it stays out of logs) and stored as its SHA-256 digest; it travels in
request bodies, and no actor is keyed by it. It is single-use: accepting or declining
answers the invitation, and an admin may revoke it. Only the signed-in account whose
email was invited may answer, and only once that email is verified (else anyone who
registered the address first would get the role); a token that is unknown, answered,
replaced, revoked or expired is ``NotFound``. Anyone holding a pending token may
preview it, signed in or not (the invitation page names the workspace and the inviter
before the invitee has an account): the token is the secret, and the preview holds what
the mail said plus the inviter's name; per IP address it is rate-limited, and every
invalid token gets the one ``NotFound``. A signed-in user with a confirmed address lists
the invitations to it (``mine``) and answers them by id: the right to answer is the
confirmed, invited email, the token only finds the invitation. The workspace name is
the inviter's text: it goes into the mail through ``mail_text`` (one line, no link
look-alikes).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, exists, func, select, tuple_, update

from handlers import ratelimit
from handlers.accounts.models import User
from handlers.accounts.users import by_email, current_user
from handlers.context import Context
from handlers.mail import Mail, mail_text, send_mail
from handlers.pagination import cursor_str, cursor_uuid, decode_cursor, encode_cursor
from handlers.registry import Registry
from handlers.workspaces import access, journal, membership
from handlers.workspaces.models import Invitation, Member, Workspace
from handlers.workspaces.views import invitation_public
from hubbub.config import Rate
from hubbub.contracts import event_types as events
from hubbub.contracts.api import invitations as api
from hubbub.contracts.api.invitations import (
    Accepted,
    InvitationCreate,
    InvitationListParams,
    InvitationPage,
    InvitationPreview,
    InvitationPublic,
    InvitationRef,
    InvitationStatus,
    InvitationTokenParams,
    MyInvitation,
    MyInvitationList,
    MyInvitationRef,
)
from hubbub.contracts.api.workspaces import WorkspaceRole
from hubbub.contracts.errors import Conflict, Forbidden, NotFound
from hubbub.contracts.operations import Empty, NoParams
from hubbub.tokens import new_opaque_token

registry = Registry()
CURSOR_SCOPE = "invitations"
INVITATION_PATH = "/invitations"  # the SPA's page; the token travels in the fragment
NOT_VALID = "this invitation is unknown, already answered or expired"
# Previews per IP address: a page load or two per invitation; guessing a 256-bit token
# is hopeless anyway, this bounds what one client makes the database do.
PREVIEW_RATE = Rate(60, 60)
MINE_LIMIT = 100
UNVERIFIED = "confirm your email address first (the link we mailed you), then answer"


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def may_grant(my_role: WorkspaceRole, role: WorkspaceRole) -> None:
    if role is WorkspaceRole.OWNER and my_role is not WorkspaceRole.OWNER:
        raise Forbidden("only owners grant, change or take away the owner role")


async def limit_invitations(ctx: Context) -> None:
    """Each invitation may send a mail: a per-user rate limit keeps that from spamming."""
    await ratelimit.hit(
        ctx.redis,
        [
            ratelimit.Limit(
                ctx.keys.key("rl", "invite", "user", ctx.user_id), ctx.settings.rate_invite_user
            )
        ],
    )


@registry.handler(api.create)
async def create(ctx: Context, params: InvitationCreate) -> InvitationPublic:
    _, my_role = await access.locked(ctx, params.workspace_id, access.MANAGE)
    may_grant(my_role, params.role)
    return await invite(ctx, params.workspace_id, params.email, params.role, my_role)


@registry.handler(api.list_pending)
async def list_pending(ctx: Context, params: InvitationListParams) -> InvitationPage:
    # Any member, viewers too (they read everything in a workspace): the activity feed
    # shows each invited email to every member already.
    await access.require(ctx, params.workspace_id, access.READ)
    statement = select(Invitation).where(
        Invitation.workspace_id == params.workspace_id,
        Invitation.status == InvitationStatus.PENDING.value,
        Invitation.expires_at > datetime.now(UTC),
    )
    if params.cursor:
        email, invitation_id = decode_cursor(params.cursor, CURSOR_SCOPE, 2)
        statement = statement.where(
            tuple_(Invitation.email, Invitation.id)
            > tuple_(cursor_str(email), cursor_uuid(invitation_id))
        )
    rows = (
        await ctx.session.scalars(
            statement.order_by(Invitation.email, Invitation.id).limit(params.limit + 1)
        )
    ).all()
    items = [invitation_public(row) for row in rows[: params.limit]]
    more = len(rows) > params.limit and items
    return InvitationPage(
        items=items,
        next_cursor=encode_cursor(CURSOR_SCOPE, items[-1].email, str(items[-1].id))
        if more
        else None,
    )


@registry.handler(api.revoke)
async def revoke(ctx: Context, params: InvitationRef) -> Empty:
    _, my_role = await access.locked(ctx, params.workspace_id, access.MANAGE)
    invitation = (
        await ctx.session.execute(
            select(Invitation)
            .where(
                Invitation.id == params.invitation_id,
                Invitation.workspace_id == params.workspace_id,
            )
            .with_for_update()
        )
    ).scalar_one_or_none()
    if invitation is None or invitation.status != InvitationStatus.PENDING.value:
        raise NotFound("no pending invitation with this id in this workspace")
    may_grant(my_role, WorkspaceRole(invitation.role))
    invitation.status = InvitationStatus.REVOKED.value
    invitation.answered_at = datetime.now(UTC)
    journal.record(
        ctx,
        params.workspace_id,
        events.INVITATION_REVOKED,
        subject_type="invitation",
        subject_id=invitation.id,
        data=invitation_public(invitation).model_dump(mode="json"),
        summary={"email": invitation.email},
    )
    return Empty()


async def invite(
    ctx: Context,
    workspace_id: uuid.UUID,
    email: str,
    role: WorkspaceRole,
    my_role: WorkspaceRole,
) -> InvitationPublic:
    """Invite ``email`` (replacing its pending invitation) and mail the link; ``Conflict``
    if it is a member's (managers see the member list: that tells them nothing new). The
    caller holds the workspace lock, has ``my_role`` and may grant ``role``; replacing an
    invitation takes it back, so only those who may revoke it may replace it. An
    invitation refused here spends none of the inviter's rate limit: only one that
    mails does."""
    workspace = await ctx.session.get(Workspace, workspace_id)
    assert workspace is not None
    user = await by_email(ctx.session, email)
    if user is not None:
        existing = await ctx.session.get(Member, (workspace_id, user.id))
        if existing is not None:
            raise Conflict("already a member of this workspace", role=existing.role)
    replaced = await ctx.session.scalars(
        update(Invitation)
        .where(
            Invitation.workspace_id == workspace_id,
            Invitation.email == email,
            Invitation.status == InvitationStatus.PENDING.value,
        )
        .values(status=InvitationStatus.REPLACED.value, answered_at=datetime.now(UTC))
        .returning(Invitation.role)
    )
    for replaced_role in replaced.all():  # refused: the request's rollback undoes it
        may_grant(my_role, WorkspaceRole(replaced_role))
    await _within_member_cap(ctx, workspace_id)
    await limit_invitations(ctx)
    token = new_opaque_token()
    invitation = Invitation(
        id=uuid.uuid4(),
        workspace_id=workspace_id,
        email=email,
        role=role.value,
        status=InvitationStatus.PENDING.value,
        token_hash=digest(token),
        invited_by=uuid.UUID(ctx.user_id),
        expires_at=datetime.now(UTC) + timedelta(seconds=ctx.settings.invitation_ttl_s),
    )
    ctx.session.add(invitation)
    await ctx.session.flush()
    await ctx.session.refresh(invitation)
    public = invitation_public(invitation)
    journal.record(
        ctx,
        workspace_id,
        events.INVITATION_CREATED,
        subject_type="invitation",
        subject_id=invitation.id,
        data=public.model_dump(mode="json"),
        summary={"email": email, "role": role.value},
    )
    send_mail(ctx, invitation_mail(ctx, email, workspace.name, role, token))
    return public


async def _within_member_cap(ctx: Context, workspace_id: uuid.UUID) -> None:
    """Refuse an invitation past ``max_members_per_workspace``, which counts the members
    and the pending invitations (each may become one: accepting needs no check of its
    own). The caller holds the workspace lock, so invitations are counted one at a time;
    one that replaces a pending invitation to the same email has replaced it already."""
    members = select(func.count()).select_from(Member).where(Member.workspace_id == workspace_id)
    pending = (
        select(func.count())
        .select_from(Invitation)
        .where(
            Invitation.workspace_id == workspace_id,
            Invitation.status == InvitationStatus.PENDING.value,
            Invitation.expires_at > func.now(),
        )
    )
    taken = await ctx.session.scalar(select(members.scalar_subquery() + pending.scalar_subquery()))
    limit = ctx.settings.max_members_per_workspace
    if (taken or 0) >= limit:
        raise Forbidden(
            f"this workspace has {limit} members and pending invitations, the most it may",
            reason="quota",
            limit=limit,
        )


def invitation_mail(
    ctx: Context, email: str, workspace_name: str, role: WorkspaceRole, token: str
) -> Mail:
    days = max(1, ctx.settings.invitation_ttl_s // 86_400)
    link = f"{ctx.settings.base_url}{INVITATION_PATH}#token={token}"
    name = mail_text(workspace_name, max_length=60)
    return Mail(
        to=email,
        subject=f"You are invited to a workspace on Hubbub: {name}",
        body=(
            f'You have been invited to the workspace "{name}" on Hubbub as {role.value}.\n\n'
            f"Accept (or decline) within {days} days here, signed in as {email} "
            f"(with the address confirmed):\n{link}\n\n"
            f"Or use this invitation token: {token}\n\n"
            "If you did not expect this, ignore this mail.\n"
        ),
    )


def _is_pending(invitation: Invitation | None) -> bool:
    return (
        invitation is not None
        and invitation.status == InvitationStatus.PENDING.value
        and invitation.expires_at > datetime.now(UTC)
    )


@registry.handler(api.preview)
async def preview(ctx: Context, params: InvitationTokenParams) -> InvitationPreview:
    await ratelimit.hit(ctx.redis, ratelimit.per_ip(ctx, "invitation-preview", PREVIEW_RATE))
    row = (
        await ctx.session.execute(
            select(Invitation, Workspace.name, User.display_name)
            .join(Workspace, Workspace.id == Invitation.workspace_id)
            .outerjoin(User, User.id == Invitation.invited_by)
            .where(Invitation.token_hash == digest(params.token))
        )
    ).one_or_none()
    if row is None or not _is_pending(row[0]):
        raise NotFound(NOT_VALID)
    invitation, workspace_name, inviter_name = row
    return InvitationPreview(
        workspace_name=workspace_name,
        invited_by_name=inviter_name,
        email=invitation.email,
        role=WorkspaceRole(invitation.role),
        expires_at=invitation.expires_at,
    )


async def _answerable(ctx: Context, invitation: Invitation | None, *, by_id: bool) -> Invitation:
    """``invitation`` (locked) if the signed-in user may answer it now. By id, an
    invitation to someone else is ``NotFound`` like a missing one (members see the ids)."""
    if invitation is None or not _is_pending(invitation):
        raise NotFound(NOT_VALID)
    me = await current_user(ctx)
    if me.email != invitation.email:
        if by_id:
            raise NotFound(NOT_VALID)
        raise Forbidden("this invitation is for another email address")
    if me.email_verified_at is None:
        raise Forbidden(UNVERIFIED, reason="email_unverified")
    return invitation


async def _by_token(ctx: Context, token: str) -> Invitation:
    return await _answerable(
        ctx, await _locked(ctx, Invitation.token_hash == digest(token)), by_id=False
    )


async def _by_id(ctx: Context, invitation_id: uuid.UUID) -> Invitation:
    return await _answerable(ctx, await _locked(ctx, Invitation.id == invitation_id), by_id=True)


async def _locked(ctx: Context, which: ColumnElement[bool]) -> Invitation | None:
    """The invitation ``which`` finds, locked after its workspace: the order every change
    to a workspace's invitations takes the two locks in (a revoke, a new invitation to the
    same email, a workspace delete). Taken the other way round, an answer at the same
    moment as one of those deadlocked."""
    workspace_id = (
        await ctx.session.execute(select(Invitation.workspace_id).where(which))
    ).scalar_one_or_none()
    if workspace_id is None:
        return None
    try:
        await access.lock_workspace(ctx, workspace_id)
    except NotFound:
        return None  # deleted meanwhile, and its invitations with it
    return (
        await ctx.session.execute(
            select(Invitation)
            .where(which)
            .with_for_update()
            .execution_options(populate_existing=True)  # as the lock found it
        )
    ).scalar_one_or_none()


async def _accept(ctx: Context, invitation: Invitation) -> Accepted:
    """Answer ``invitation`` (locked, with its workspace) yes."""
    me = await current_user(ctx)
    invitation.status = InvitationStatus.ACCEPTED.value
    invitation.answered_at = datetime.now(UTC)
    existing = await ctx.session.get(Member, (invitation.workspace_id, me.id))
    if existing is not None:  # joined meanwhile (another invitation): keep that role
        return Accepted(workspace_id=invitation.workspace_id, role=WorkspaceRole(existing.role))
    role = WorkspaceRole(invitation.role)
    await membership.join(ctx, invitation.workspace_id, me, role)
    return Accepted(workspace_id=invitation.workspace_id, role=role)


async def _decline(ctx: Context, invitation: Invitation) -> Empty:
    invitation.status = InvitationStatus.DECLINED.value
    invitation.answered_at = datetime.now(UTC)
    public = invitation_public(invitation)
    journal.record(
        ctx,
        invitation.workspace_id,
        events.INVITATION_DECLINED,
        subject_type="invitation",
        subject_id=invitation.id,
        data=public.model_dump(mode="json"),
        summary={"email": invitation.email},
    )
    return Empty()


@registry.handler(api.accept)
async def accept(ctx: Context, params: InvitationTokenParams) -> Accepted:
    return await _accept(ctx, await _by_token(ctx, params.token))


@registry.handler(api.decline)
async def decline(ctx: Context, params: InvitationTokenParams) -> Empty:
    return await _decline(ctx, await _by_token(ctx, params.token))


@registry.handler(api.accept_mine)
async def accept_mine(ctx: Context, params: MyInvitationRef) -> Accepted:
    return await _accept(ctx, await _by_id(ctx, params.invitation_id))


@registry.handler(api.decline_mine)
async def decline_mine(ctx: Context, params: MyInvitationRef) -> Empty:
    return await _decline(ctx, await _by_id(ctx, params.invitation_id))


@registry.handler(api.mine)
async def mine(ctx: Context, params: NoParams) -> MyInvitationList:
    me = await current_user(ctx)
    if me.email_verified_at is None:
        raise Forbidden(UNVERIFIED, reason="email_unverified")
    already_member = exists().where(
        Member.workspace_id == Invitation.workspace_id, Member.user_id == me.id
    )
    rows = (
        await ctx.session.execute(
            select(Invitation, Workspace.name, User.display_name)
            .join(Workspace, Workspace.id == Invitation.workspace_id)
            .outerjoin(User, User.id == Invitation.invited_by)
            .where(
                Invitation.email == me.email,
                Invitation.status == InvitationStatus.PENDING.value,
                Invitation.expires_at > datetime.now(UTC),
                ~already_member,
            )
            .order_by(Invitation.created_at.desc(), Invitation.id)
            .limit(MINE_LIMIT)
        )
    ).all()
    return MyInvitationList(
        items=[
            MyInvitation(
                id=invitation.id,
                workspace_id=invitation.workspace_id,
                workspace_name=workspace_name,
                invited_by_name=inviter_name,
                role=WorkspaceRole(invitation.role),
                expires_at=invitation.expires_at,
            )
            for invitation, workspace_name, inviter_name in rows
        ]
    )
