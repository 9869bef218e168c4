"""Invitations: an email asked into a workspace with a role, by a single-use token.

The token is mailed (the same mail path as password reset) and stored as its SHA-256
digest. Accepting or declining needs the signed-in account with the invited email;
either spends the token. A new invitation of the same email replaces the pending one.
Members see a workspace's pending invitations; admins revoke them (an owner invitation:
owners), which spends the token too. Whoever holds a pending token may preview it, signed
in or not: the token is the secret, and the preview says no more than the mail did. A
signed-in user with a confirmed address lists the invitations to it and answers them
by id (the token is only a way to find one; the invited, confirmed email is the right).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, StringConstraints

from hubbub.contracts.api.common import Cursor, Limit, Params
from hubbub.contracts.api.users import Email
from hubbub.contracts.api.workspaces import WorkspaceRole
from hubbub.contracts.errors import ErrorCode
from hubbub.contracts.operations import Access, Catalog, Empty, Http, NoParams, Operation

InvitationToken = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{16,100}$")]


class InvitationStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    REPLACED = "replaced"
    REVOKED = "revoked"


class InvitationPublic(BaseModel):
    id: uuid.UUID
    workspace_id: uuid.UUID
    email: str
    role: WorkspaceRole
    status: InvitationStatus
    invited_by: uuid.UUID | None
    created_at: datetime
    expires_at: datetime


class InvitationCreate(Params):
    workspace_id: uuid.UUID
    email: Email
    role: WorkspaceRole = WorkspaceRole.MEMBER


class InvitationListParams(Params):
    workspace_id: uuid.UUID
    limit: Limit = 50
    cursor: Cursor | None = None


class InvitationPage(BaseModel):
    """Pending, unexpired invitations, by email."""

    items: list[InvitationPublic]
    next_cursor: str | None = None


class InvitationRef(Params):
    workspace_id: uuid.UUID
    invitation_id: uuid.UUID


class InvitationTokenParams(Params):
    token: InvitationToken


class InvitationPreview(BaseModel):
    """What a pending invitation's link is for, shown before signing in: the mail to
    ``email`` said as much already (workspace, role, validity), plus who sent it."""

    workspace_name: str
    invited_by_name: str | None  # the inviter's display name; None once that account is gone
    email: str
    role: WorkspaceRole
    expires_at: datetime


class MyInvitation(BaseModel):
    """A pending invitation to the signed-in user's email."""

    id: uuid.UUID
    workspace_id: uuid.UUID
    workspace_name: str
    invited_by_name: str | None
    role: WorkspaceRole
    expires_at: datetime


class MyInvitationList(BaseModel):
    """Newest first, at most 100; workspaces the user is a member of already are left out."""

    items: list[MyInvitation]


class MyInvitationRef(Params):
    invitation_id: uuid.UUID


class Accepted(BaseModel):
    workspace_id: uuid.UUID
    role: WorkspaceRole


catalog = Catalog()
_TAGS = ("invitations",)

create = catalog.add(
    Operation(
        name="invitations.create",
        params=InvitationCreate,
        result=InvitationPublic,
        access=Access.USER,
        http=Http("POST", "/workspaces/{workspace_id}/invitations", status=201),
        mutating=True,
        key="workspace_id",
        summary="Invite an email into the workspace with a role (admins)",
        tags=_TAGS,
        errors=(ErrorCode.NOT_FOUND, ErrorCode.FORBIDDEN, ErrorCode.CONFLICT),
    )
)
list_pending = catalog.add(
    Operation(
        name="invitations.list",
        params=InvitationListParams,
        result=InvitationPage,
        access=Access.USER,
        http=Http("GET", "/workspaces/{workspace_id}/invitations"),
        summary="The workspace's pending invitations, by email",
        tags=_TAGS,
        errors=(ErrorCode.NOT_FOUND,),
    )
)
revoke = catalog.add(
    Operation(
        name="invitations.revoke",
        params=InvitationRef,
        result=Empty,
        access=Access.USER,
        http=Http("DELETE", "/workspaces/{workspace_id}/invitations/{invitation_id}", status=204),
        mutating=True,
        key="workspace_id",
        summary="Withdraw a pending invitation; its link stops working (admins; owner: owners)",
        tags=_TAGS,
        errors=(ErrorCode.NOT_FOUND, ErrorCode.FORBIDDEN),
    )
)
preview = catalog.add(
    Operation(
        name="invitations.preview",
        params=InvitationTokenParams,
        result=InvitationPreview,
        access=Access.PUBLIC,
        http=Http("POST", "/invitations/preview"),
        read_only=True,
        summary="What a pending invitation is for (anyone holding its token, signed in or not)",
        description=(
            "The workspace's name, the inviter's display name, the invited email, the role "
            "and the expiry. An unknown, answered, replaced, revoked or expired token is the "
            "same 404. Limited per IP address."
        ),
        tags=_TAGS,
        errors=(ErrorCode.NOT_FOUND, ErrorCode.RATE_LIMITED),
    )
)
mine = catalog.add(
    Operation(
        name="invitations.mine",
        params=NoParams,
        result=MyInvitationList,
        access=Access.USER,
        http=Http("GET", "/invitations/mine"),
        summary="Pending invitations to my email (once the address is confirmed)",
        description=(
            "An unconfirmed address gets 403 `email_unverified`: whoever registered it "
            "first learns nothing about the invitations its owner receives."
        ),
        tags=_TAGS,
        errors=(ErrorCode.FORBIDDEN,),
    )
)
accept_mine = catalog.add(
    Operation(
        name="invitations.accept_mine",
        params=MyInvitationRef,
        result=Accepted,
        access=Access.USER,
        http=Http("POST", "/invitations/mine/{invitation_id}/accept"),
        mutating=True,
        summary="Join the workspace of a pending invitation to my (confirmed) email, by its id",
        tags=_TAGS,
        errors=(ErrorCode.NOT_FOUND, ErrorCode.FORBIDDEN),
    )
)
decline_mine = catalog.add(
    Operation(
        name="invitations.decline_mine",
        params=MyInvitationRef,
        result=Empty,
        access=Access.USER,
        http=Http("POST", "/invitations/mine/{invitation_id}/decline", status=204),
        mutating=True,
        summary="Turn down a pending invitation to my (confirmed) email, by its id",
        tags=_TAGS,
        errors=(ErrorCode.NOT_FOUND, ErrorCode.FORBIDDEN),
    )
)
accept = catalog.add(
    Operation(
        name="invitations.accept",
        params=InvitationTokenParams,
        result=Accepted,
        access=Access.USER,
        http=Http("POST", "/invitations/accept"),
        mutating=True,
        summary="Join the workspace an invitation to my email names",
        tags=_TAGS,
        errors=(ErrorCode.NOT_FOUND, ErrorCode.FORBIDDEN),
    )
)
decline = catalog.add(
    Operation(
        name="invitations.decline",
        params=InvitationTokenParams,
        result=Empty,
        access=Access.USER,
        http=Http("POST", "/invitations/decline", status=204),
        mutating=True,
        summary="Turn an invitation to my email down",
        tags=_TAGS,
        errors=(ErrorCode.NOT_FOUND, ErrorCode.FORBIDDEN),
    )
)
