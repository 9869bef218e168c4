"""Workspaces: the unit of membership. Everything else (members, invitations, resources,
activity) lives in one. Roles, from least to most: viewer, member, admin, owner.

A workspace you are not a member of does not exist for you (404, never 403), so ids
leak nothing. Renaming and deleting are the owners'.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema

from hubbub.contracts.api.common import (
    Cursor,
    ExpectedVersion,
    Limit,
    Name,
    NotNull,
    Params,
    PatchParams,
)
from hubbub.contracts.errors import ErrorCode
from hubbub.contracts.operations import Access, Catalog, Empty, Http, Operation


class WorkspaceRole(StrEnum):
    VIEWER = "viewer"
    MEMBER = "member"
    ADMIN = "admin"
    OWNER = "owner"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def at_least(self, other: WorkspaceRole) -> bool:
        return self.rank >= other.rank


_RANKS = {
    WorkspaceRole.VIEWER: 0,
    WorkspaceRole.MEMBER: 1,
    WorkspaceRole.ADMIN: 2,
    WorkspaceRole.OWNER: 3,
}

WorkspaceName = Name


class WorkspacePublic(BaseModel):
    id: uuid.UUID
    name: str
    version: int = Field(description="Rises by one with every change; in the ETag")
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class MyWorkspace(WorkspacePublic):
    """A workspace as one of its members sees it: with their role."""

    role: WorkspaceRole


class WorkspacePage(BaseModel):
    items: list[MyWorkspace]
    next_cursor: str | None = None


class WorkspaceCreate(Params):
    name: WorkspaceName


class WorkspaceListParams(Params):
    limit: Limit = 50
    cursor: Cursor | None = None


class WorkspaceIdParams(Params):
    workspace_id: uuid.UUID


class WorkspaceUpdate(PatchParams):
    patchable = ("name",)

    workspace_id: uuid.UUID
    name: Annotated[WorkspaceName | SkipJsonSchema[None], NotNull] = None
    expected_version: ExpectedVersion = None


class WorkspaceDelete(Params):
    workspace_id: uuid.UUID
    expected_version: ExpectedVersion = None


catalog = Catalog()
_TAGS = ("workspaces",)

list_workspaces = catalog.add(
    Operation(
        name="workspaces.list",
        params=WorkspaceListParams,
        result=WorkspacePage,
        access=Access.USER,
        http=Http("GET", "/workspaces"),
        summary="The workspaces I am a member of, newest first",
        tags=_TAGS,
    )
)
create = catalog.add(
    Operation(
        name="workspaces.create",
        params=WorkspaceCreate,
        result=MyWorkspace,
        access=Access.USER,
        http=Http("POST", "/workspaces", status=201, etag="version", etag_caller="role"),
        mutating=True,
        summary="Create a workspace; I become its owner",
        tags=_TAGS,
        errors=(ErrorCode.FORBIDDEN,),
    )
)
get = catalog.add(
    Operation(
        name="workspaces.get",
        params=WorkspaceIdParams,
        result=MyWorkspace,
        access=Access.USER,
        http=Http("GET", "/workspaces/{workspace_id}", etag="version", etag_caller="role"),
        summary="One workspace (members only)",
        tags=_TAGS,
        errors=(ErrorCode.NOT_FOUND,),
    )
)
update = catalog.add(
    Operation(
        name="workspaces.update",
        params=WorkspaceUpdate,
        result=MyWorkspace,
        access=Access.USER,
        http=Http(
            "PATCH",
            "/workspaces/{workspace_id}",
            etag="version",
            etag_caller="role",
            if_match="expected_version",
        ),
        mutating=True,
        key="workspace_id",
        summary="Rename a workspace (owners)",
        tags=_TAGS,
        errors=(ErrorCode.NOT_FOUND, ErrorCode.FORBIDDEN, ErrorCode.CONFLICT),
    )
)
delete = catalog.add(
    Operation(
        name="workspaces.delete",
        params=WorkspaceDelete,
        result=Empty,
        access=Access.USER,
        http=Http("DELETE", "/workspaces/{workspace_id}", status=204, if_match="expected_version"),
        mutating=True,
        key="workspace_id",
        summary="Delete a workspace and everything in it (owners)",
        tags=_TAGS,
        errors=(ErrorCode.NOT_FOUND, ErrorCode.FORBIDDEN, ErrorCode.CONFLICT),
    )
)
