"""Who may do what in a workspace: the caller's membership, read from the database.

The rule of the domain: a workspace you are not a member of is ``NotFound`` — for every
route, whether or not it exists — so ids leak nothing. A member whose role is too low
gets ``Forbidden``. Roles rank viewer < member < admin < owner:

* viewers read everything in the workspace;
* members also write resources (create, change, soft delete, restore);
* admins also manage members and invitations, and delete resources for good;
* owners also rename and delete the workspace and grant or take the owner role.
"""

from __future__ import annotations

import uuid

from sqlalchemy import bindparam, select

from handlers.context import Context
from handlers.db import Query
from handlers.workspaces.models import Member, Workspace
from hubbub.contracts.api.workspaces import WorkspaceRole
from hubbub.contracts.errors import Forbidden, NotFound

READ = WorkspaceRole.VIEWER
WRITE = WorkspaceRole.MEMBER
MANAGE = WorkspaceRole.ADMIN
OWN = WorkspaceRole.OWNER


def not_found() -> NotFound:
    return NotFound("no such workspace")


ROLE = Query(
    select(Member.role).where(
        Member.workspace_id == bindparam("workspace_id"), Member.user_id == bindparam("user_id")
    )
)


async def role_of(
    ctx: Context, workspace_id: uuid.UUID, user_id: str | uuid.UUID
) -> WorkspaceRole | None:
    """The user's role, or None for a non-member. A read-only operation reads it on the
    read pool (no session); a write, in its transaction (after ``lock_workspace``, under
    that lock)."""
    row = await ctx.read_one(ROLE, workspace_id, uuid.UUID(str(user_id)))
    return WorkspaceRole(row["role"]) if row is not None else None


async def require(ctx: Context, workspace_id: uuid.UUID, at_least: WorkspaceRole) -> WorkspaceRole:
    """The caller's role in the workspace, if it is ``at_least``; else 404 or 403."""
    role = await role_of(ctx, workspace_id, ctx.user_id)
    if role is None:
        raise not_found()
    if not role.at_least(at_least):
        raise Forbidden(f"this needs the {at_least.value} role or higher", role=role.value)
    return role


async def lock_workspace(ctx: Context, workspace_id: uuid.UUID) -> Workspace:
    """The workspace row, locked against other membership changes and channel checks.

    Every membership change takes this lock first (``FOR NO KEY UPDATE``), and
    ``channels.authorize`` reads under ``FOR SHARE``: so a cached channel answer is never
    written after the change that makes it wrong has dropped it (see channels.py).
    Resource writes do not conflict with it (their foreign key takes ``KEY SHARE``).
    """
    workspace = (
        await ctx.session.execute(
            select(Workspace)
            .where(Workspace.id == workspace_id)
            .with_for_update(key_share=True)  # FOR NO KEY UPDATE
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    if workspace is None:
        raise not_found()
    return workspace


async def locked(
    ctx: Context, workspace_id: uuid.UUID, at_least: WorkspaceRole
) -> tuple[Workspace, WorkspaceRole]:
    """For membership changes: lock the workspace, then check the caller's role — under
    the lock, so a concurrent change to the caller's own role is seen."""
    workspace = await lock_workspace(ctx, workspace_id)
    return workspace, await require(ctx, workspace_id, at_least)
