"""The catalog of domain event types: every ``type`` a handler emits, its ``data`` model
and the channel kinds it goes to.

Handlers emit these entries (``ctx.emit(channel, RESOURCE_UPDATED, data)``,
``journal.record(ctx, workspace_id, RESOURCE_UPDATED, ...)``), never bare strings. The
AsyncAPI document (``hubbub/contracts/asyncapi.py``), the frontend's event types and the
table in ``docs/domain.md`` are generated from this list. ``data`` is the subject's public
representation, so a client can update its state from the event alone.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from hubbub.contracts.api.invitations import InvitationPublic
from hubbub.contracts.api.members import MemberPublic
from hubbub.contracts.api.resources import ResourcePublic
from hubbub.contracts.api.users import UserPublic
from hubbub.contracts.api.workspaces import WorkspacePublic
from hubbub.contracts.channels import ChannelKind
from hubbub.contracts.events import EventType

WORKSPACE = (ChannelKind.WORKSPACE,)
WORKSPACE_AND_USER = (ChannelKind.WORKSPACE, ChannelKind.USER)


EVENT_TYPES: dict[str, EventType] = {}
"""Every event type by name, in the order they are defined below."""


def define_event(
    name: str, data: type[BaseModel], channels: tuple[ChannelKind, ...], summary: str
) -> EventType:
    """Define an event type and list it in ``EVENT_TYPES`` in one step."""
    if name in EVENT_TYPES:
        raise ValueError(f"event type {name!r} is defined twice")
    event = EVENT_TYPES[name] = EventType(name, data, channels, summary)
    return event


class ResourceDeleted(ResourcePublic):
    """The resource as it was, with ``deleted_at`` set."""

    hard: bool = Field(description="Gone for good (true) or moved to the trash (false)")


WORKSPACE_CREATED = define_event(
    "workspace.created", WorkspacePublic, WORKSPACE, "a workspace was created"
)
WORKSPACE_UPDATED = define_event(
    "workspace.updated", WorkspacePublic, WORKSPACE, "a workspace was renamed"
)
WORKSPACE_DELETED = define_event(
    "workspace.deleted",
    WorkspacePublic,
    WORKSPACE_AND_USER,
    "a workspace was deleted (as it was); also on `user:<id>` of every member",
)
MEMBER_ADDED = define_event(
    "member.added",
    MemberPublic,
    WORKSPACE_AND_USER,
    "someone joined (added, or accepted an invitation); also on `user:<id>` of that member",
)
MEMBER_UPDATED = define_event(
    "member.updated",
    MemberPublic,
    WORKSPACE_AND_USER,
    "a member's role changed; also on `user:<id>` of that member",
)
MEMBER_REMOVED = define_event(
    "member.removed",
    MemberPublic,
    WORKSPACE_AND_USER,
    "a member was removed or left; also on `user:<id>` of that member",
)
INVITATION_CREATED = define_event(
    "invitation.created", InvitationPublic, WORKSPACE, "someone was invited"
)
INVITATION_DECLINED = define_event(
    "invitation.declined", InvitationPublic, WORKSPACE, "the invited person declined"
)
INVITATION_REVOKED = define_event(
    "invitation.revoked", InvitationPublic, WORKSPACE, "an admin revoked an invitation"
)
RESOURCE_CREATED = define_event(
    "resource.created", ResourcePublic, WORKSPACE, "a resource was created"
)
RESOURCE_UPDATED = define_event(
    "resource.updated", ResourcePublic, WORKSPACE, "a resource changed (the new `version`)"
)
RESOURCE_DELETED = define_event(
    "resource.deleted",
    ResourceDeleted,
    WORKSPACE,
    "a resource went to the trash (`hard: false`) or for good (`hard: true`)",
)
RESOURCE_RESTORED = define_event(
    "resource.restored", ResourcePublic, WORKSPACE, "a resource came back from the trash"
)
USER_UPDATED = define_event(
    "user.updated",
    UserPublic,
    (ChannelKind.USER,),
    "the account changed (display name, role, active) — on that user's own channel",
)


def on_channel(kind: ChannelKind) -> list[EventType]:
    """The event types published on channels of ``kind``, in catalog order."""
    return [event for event in EVENT_TYPES.values() if kind in event.channels]


def domain_table() -> str:
    """The Markdown table of ``docs/domain.md``'s *Events* section (a test keeps the two
    equal): one row per type, its ``data`` model and the channel kinds it goes to."""
    rows = ["| `type` | `data` | channels | when |", "|---|---|---|---|"]
    for event in EVENT_TYPES.values():
        kinds = ", ".join(f"`{kind.value}:`" for kind in event.channels)
        rows.append(f"| `{event.name}` | `{event.data.__name__}` | {kinds} | {event.summary} |")
    return "\n".join(rows) + "\n"
