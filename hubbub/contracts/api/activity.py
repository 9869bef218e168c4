"""The activity log: who changed what in a workspace, when, from which version to which.

Written in the transaction of the change it records; readable by every member, newest
first. It feeds the frontend's activity feed.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from hubbub.contracts.api.common import Cursor, Limit, Params
from hubbub.contracts.errors import ErrorCode
from hubbub.contracts.operations import Access, Catalog, Http, Operation


class ActivityPublic(BaseModel):
    id: int
    workspace_id: uuid.UUID
    actor_id: uuid.UUID | None = Field(description="Who did it (null: since deleted)")
    action: str = Field(examples=["resource.updated"], description="The event type")
    subject_type: str = Field(examples=["resource"])
    subject_id: str
    before_version: int | None
    after_version: int | None
    at: datetime
    summary: dict[str, Any] = Field(description="A few fields of the subject, e.g. its title")


class ActivityPage(BaseModel):
    items: list[ActivityPublic]
    next_cursor: str | None = None


class ActivityListParams(Params):
    workspace_id: uuid.UUID
    subject_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    actor_id: uuid.UUID | None = None
    limit: Limit = 50
    cursor: Cursor | None = None


catalog = Catalog()

list_activity = catalog.add(
    Operation(
        name="activity.list",
        params=ActivityListParams,
        result=ActivityPage,
        access=Access.USER,
        http=Http("GET", "/workspaces/{workspace_id}/activity"),
        summary="A workspace's activity, newest first",
        tags=("activity",),
        errors=(ErrorCode.NOT_FOUND,),
    )
)
