"""Members of a workspace: listed by any member, managed by admins and owners.

Admins add, re-role and remove members, admins and viewers; only owners grant, change or
take away the owner role. A workspace always keeps at least one owner, so the last owner
can neither leave, be removed nor be demoted. Adding someone by email always invites
them: they join when they accept, signed in as the verified account with that email —
whether or not the email has an account, the answer is the same (an invitation).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel

from hubbub.contracts.api.common import Cursor, Limit, Params
from hubbub.contracts.api.invitations import InvitationPublic
from hubbub.contracts.api.users import Email
from hubbub.contracts.api.workspaces import WorkspaceRole
from hubbub.contracts.errors import ErrorCode
from hubbub.contracts.operations import Access, Catalog, Empty, Http, Operation


class MemberPublic(BaseModel):
    workspace_id: uuid.UUID
    user_id: uuid.UUID
    email: str
    display_name: str
    role: WorkspaceRole
    joined_at: datetime
    updated_at: datetime


class MemberPage(BaseModel):
    items: list[MemberPublic]
    next_cursor: str | None = None


class MemberListParams(Params):
    workspace_id: uuid.UUID
    role: WorkspaceRole | None = None
    limit: Limit = 50
    cursor: Cursor | None = None


class MemberAdd(Params):
    workspace_id: uuid.UUID
    email: Email
    role: WorkspaceRole = WorkspaceRole.MEMBER


class AddOutcome(StrEnum):
    INVITED = "invited"


class MemberAdded(BaseModel):
    """Always ``invited``: an invitation was mailed, and the person joins by accepting it
    (a stranger who registered the email first cannot, being unverified). The answer is
    the same whether or not the email has an account."""

    status: AddOutcome = AddOutcome.INVITED
    invitation: InvitationPublic


class MemberUpdate(Params):
    workspace_id: uuid.UUID
    user_id: uuid.UUID
    role: WorkspaceRole


class MemberRef(Params):
    workspace_id: uuid.UUID
    user_id: uuid.UUID


class LeaveParams(Params):
    workspace_id: uuid.UUID


catalog = Catalog()
_TAGS = ("members",)
_MANAGE_ERRORS = (ErrorCode.NOT_FOUND, ErrorCode.FORBIDDEN, ErrorCode.CONFLICT)

list_members = catalog.add(
    Operation(
        name="members.list",
        params=MemberListParams,
        result=MemberPage,
        access=Access.USER,
        http=Http("GET", "/workspaces/{workspace_id}/members"),
        summary="The members of a workspace, by email",
        tags=_TAGS,
        errors=(ErrorCode.NOT_FOUND,),
    )
)
add = catalog.add(
    Operation(
        name="members.add",
        params=MemberAdd,
        result=MemberAdded,
        access=Access.USER,
        # 202: nothing is created at .../members/{user_id} yet — the person joins when
        # they accept the invitation.
        http=Http("POST", "/workspaces/{workspace_id}/members", status=202),
        mutating=True,
        key="workspace_id",
        summary="Invite someone by email (admins); they join when they accept",
        tags=_TAGS,
        errors=(*_MANAGE_ERRORS, ErrorCode.RATE_LIMITED),
    )
)
update = catalog.add(
    Operation(
        name="members.update",
        params=MemberUpdate,
        result=MemberPublic,
        access=Access.USER,
        http=Http("PATCH", "/workspaces/{workspace_id}/members/{user_id}"),
        mutating=True,
        key="workspace_id",
        summary="Change a member's role (admins; the owner role: owners)",
        tags=_TAGS,
        errors=_MANAGE_ERRORS,
    )
)
remove = catalog.add(
    Operation(
        name="members.remove",
        params=MemberRef,
        result=Empty,
        access=Access.USER,
        http=Http("DELETE", "/workspaces/{workspace_id}/members/{user_id}", status=204),
        mutating=True,
        key="workspace_id",
        summary="Remove a member (admins; an owner: owners)",
        tags=_TAGS,
        errors=_MANAGE_ERRORS,
    )
)
leave = catalog.add(
    Operation(
        name="members.leave",
        params=LeaveParams,
        result=Empty,
        access=Access.USER,
        http=Http("POST", "/workspaces/{workspace_id}/leave", status=204),
        mutating=True,
        key="workspace_id",
        summary="Leave a workspace (not as its last owner)",
        tags=_TAGS,
        errors=(ErrorCode.NOT_FOUND, ErrorCode.CONFLICT),
    )
)
