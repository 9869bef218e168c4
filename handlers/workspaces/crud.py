"""``workspaces.list``, ``workspaces.create``, ``workspaces.get``, ``workspaces.update``,
``workspaces.delete``."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, func, select, tuple_

from handlers.context import Context
from handlers.pagination import cursor_time, cursor_uuid, decode_cursor, encode_cursor
from handlers.registry import Registry
from handlers.workspaces import access, acl, journal, membership
from handlers.workspaces.cache import cache_for
from handlers.workspaces.models import Member, Workspace
from handlers.workspaces.views import my_workspace, workspace_public
from hubbub.contracts import event_types as events
from hubbub.contracts.api import workspaces as api
from hubbub.contracts.api.workspaces import (
    MyWorkspace,
    WorkspaceCreate,
    WorkspaceDelete,
    WorkspaceIdParams,
    WorkspaceListParams,
    WorkspacePage,
    WorkspacePublic,
    WorkspaceRole,
    WorkspaceUpdate,
)
from hubbub.contracts.channels import Channel
from hubbub.contracts.errors import stale_version
from hubbub.contracts.operations import Empty

registry = Registry()
CURSOR_SCOPE = "workspaces"


@registry.handler(api.list_workspaces)
async def list_workspaces(ctx: Context, params: WorkspaceListParams) -> WorkspacePage:
    me = uuid.UUID(ctx.user_id)
    statement = (
        select(Workspace, Member.role)
        .join(Member, Member.workspace_id == Workspace.id)
        .where(Member.user_id == me)
    )
    if params.cursor:
        at, last_id = decode_cursor(params.cursor, CURSOR_SCOPE, 2)
        statement = statement.where(
            tuple_(Workspace.created_at, Workspace.id)
            < tuple_(cursor_time(at), cursor_uuid(last_id))
        )
    rows = (
        await ctx.session.execute(
            statement.order_by(Workspace.created_at.desc(), Workspace.id.desc()).limit(
                params.limit + 1
            )
        )
    ).all()
    page = rows[: params.limit]
    items = [my_workspace(workspace_public(w), WorkspaceRole(role)) for w, role in page]
    more = len(rows) > params.limit
    return WorkspacePage(
        items=items,
        next_cursor=encode_cursor(CURSOR_SCOPE, items[-1].created_at.isoformat(), str(items[-1].id))
        if more and items
        else None,
    )


@registry.handler(api.create)
async def create(ctx: Context, params: WorkspaceCreate) -> MyWorkspace:
    me = uuid.UUID(ctx.user_id)
    await membership.within_quota(ctx, me)
    workspace = Workspace(id=uuid.uuid4(), name=params.name, version=1, created_by=me)
    ctx.session.add(workspace)
    await ctx.session.flush()
    ctx.session.add(Member(workspace_id=workspace.id, user_id=me, role=WorkspaceRole.OWNER.value))
    await ctx.session.flush()
    await ctx.session.refresh(workspace)
    public = workspace_public(workspace)
    journal.record(
        ctx,
        workspace.id,
        events.WORKSPACE_CREATED,
        subject_type="workspace",
        subject_id=workspace.id,
        data=public.model_dump(mode="json"),
        summary={"name": workspace.name},
        after_version=1,
    )
    acl.membership_changed(ctx, workspace.id, [me], revoked=False)
    return my_workspace(public, WorkspaceRole.OWNER)


@registry.handler(api.get)
async def get(ctx: Context, params: WorkspaceIdParams) -> MyWorkspace:
    role = await access.require(ctx, params.workspace_id, access.READ)
    cache = cache_for(ctx, params.workspace_id)
    public = await cache.get(WorkspacePublic, "workspace")
    if public is None:
        workspace = await ctx.session.get(Workspace, params.workspace_id)
        if workspace is None:
            raise access.not_found()
        public = workspace_public(workspace)
        await cache.put(public, "workspace")
    return my_workspace(public, role)


@registry.handler(api.update)
async def update(ctx: Context, params: WorkspaceUpdate) -> MyWorkspace:
    # The role checked under the lock: an owner demoted meanwhile renames nothing.
    workspace, role = await access.locked(ctx, params.workspace_id, access.OWN)
    _check_version(workspace, params.expected_version)
    before = workspace.version
    if params.name is not None:
        workspace.name = params.name
    workspace.version += 1
    workspace.updated_at = func.now()
    await ctx.session.flush()
    await ctx.session.refresh(workspace)
    public = workspace_public(workspace)
    journal.record(
        ctx,
        workspace.id,
        events.WORKSPACE_UPDATED,
        subject_type="workspace",
        subject_id=workspace.id,
        data=public.model_dump(mode="json"),
        summary={"name": workspace.name},
        before_version=before,
        after_version=workspace.version,
    )
    return my_workspace(public, role)


@registry.handler(api.delete)
async def delete_workspace(ctx: Context, params: WorkspaceDelete) -> Empty:
    workspace, _ = await access.locked(ctx, params.workspace_id, access.OWN)
    _check_version(workspace, params.expected_version)
    members = (
        await ctx.session.scalars(select(Member.user_id).where(Member.workspace_id == workspace.id))
    ).all()
    public = workspace_public(workspace)
    await ctx.session.execute(delete(Workspace).where(Workspace.id == workspace.id))
    # First: its control messages must not wait behind the journal's cache bump (acl.py).
    acl.membership_changed(ctx, workspace.id, members, revoked=True)
    # The activity log goes with the workspace; the event is what remains.
    journal.record(
        ctx,
        workspace.id,
        events.WORKSPACE_DELETED,
        subject_type="workspace",
        subject_id=workspace.id,
        data=public.model_dump(mode="json"),
        activity=False,
    )
    for user_id in members:
        ctx.emit(Channel.user(user_id), events.WORKSPACE_DELETED, public.model_dump(mode="json"))
    return Empty()


def _check_version(workspace: Workspace, expected: int | None) -> None:
    if expected is not None and expected != workspace.version:
        raise stale_version("workspace", current=workspace.version, expected=expected)
