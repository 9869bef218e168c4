"""Recording a change: its activity row, its event and the cache invalidation, together.

Every change in a workspace calls ``record`` once, inside its transaction: the activity
row and the outbox event commit with the change or not at all, and the workspace's
cached reads are dropped once it has committed. One function, so no change can do one
of the three and forget the others.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from handlers.context import Context
from handlers.workspaces.cache import cache_for
from handlers.workspaces.models import Activity
from hubbub.contracts.channels import Channel
from hubbub.contracts.events import Event, EventType


def record(
    ctx: Context,
    workspace_id: uuid.UUID,
    action: EventType,
    *,
    subject_type: str,
    subject_id: str | uuid.UUID,
    data: dict[str, Any],
    summary: dict[str, Any] | None = None,
    before_version: int | None = None,
    after_version: int | None = None,
    activity: bool = True,
) -> None:
    """Journal ``action`` (a catalog event type, e.g. ``RESOURCE_UPDATED``) with ``data``,
    the public representation of the subject, on the channel ``workspace:<id>``; the
    activity row's ``action`` is the type's name."""
    if activity:
        ctx.session.add(
            Activity(
                workspace_id=workspace_id,
                actor_id=uuid.UUID(ctx.caller.user_id) if ctx.caller.user_id else None,
                action=action.name,
                subject_type=subject_type,
                subject_id=str(subject_id),
                before_version=before_version,
                after_version=after_version,
                summary=summary or {},
            )
        )
    ctx.emit(Channel.workspace(workspace_id), action, data)
    cache_for(ctx, workspace_id).invalidate_after_commit()


@dataclass(slots=True)
class Entries:
    """What ``record`` writes, as values, for a handler that writes its activity row and
    outbox event in its own statement (``actor_id``, ``action``, ``summary`` of the
    activity row; ``event`` and its ``payload``, the outbox row's ``payload``)."""

    actor_id: uuid.UUID | None
    action: str
    summary: dict[str, Any]
    event: Event
    payload: dict[str, Any]


def entries(
    ctx: Context,
    workspace_id: uuid.UUID,
    action: EventType,
    *,
    data: dict[str, Any],
    summary: dict[str, Any],
) -> Entries:
    """``record``'s activity row and event as values, which the caller must write in its
    transaction; the event is counted as emitted (the relay is woken after the commit)
    and the workspace's cache dropped after the commit, as ``record`` does."""
    event = ctx.event(Channel.workspace(workspace_id), action, data)
    payload = event.model_dump(mode="json")
    ctx.emitted_one(event)
    cache_for(ctx, workspace_id).invalidate_after_commit()
    return Entries(
        uuid.UUID(ctx.caller.user_id) if ctx.caller.user_id else None,
        action.name,
        summary,
        event,
        payload,
    )
