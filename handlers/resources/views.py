"""A resource row → ``ResourcePublic`` (the API's answer and the events' ``data``)."""

from __future__ import annotations

from handlers.resources.models import Resource
from hubbub.contracts.api.resources import ResourcePublic


def resource_public(row: Resource) -> ResourcePublic:
    return ResourcePublic(
        id=row.id,
        workspace_id=row.workspace_id,
        kind=row.kind,
        title=row.title,
        body=row.body,
        status=row.status,
        position=row.position,
        tags=list(row.tags),
        data=row.data,
        version=row.version,
        created_by=row.created_by,
        updated_by=row.updated_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        deleted_at=row.deleted_at,
    )


def summary(row: Resource | ResourcePublic) -> dict[str, str]:
    """What the activity log keeps of a resource: enough to show a line in a feed."""
    return {"title": row.title, "kind": row.kind, "status": row.status}
