"""The catalog of domain event types: every ``type`` a handler emits, its ``data`` model
and the channel kinds it goes to.

Handlers emit these entries (``ctx.emit(channel, RESOURCE_UPDATED, data)``,
``journal.record(ctx, workspace_id, RESOURCE_UPDATED, ...)``), never bare strings. The
AsyncAPI document (``hubbub/contracts/asyncapi.py``), the frontend's event types and the
table in ``docs/domain.md`` are generated from this list. ``data`` is the subject's public
representation, so a client can update its state from the event alone.
"""

from __future__ import annotations

from pydantic import Field

from hubbub.contracts.api.invitations import InvitationPublic
from hubbub.contracts.api.members import MemberPublic
from hubbub.contracts.api.resources import ResourcePublic
from hubbub.contracts.api.users import UserPublic
from hubbub.contracts.api.workspaces import WorkspacePublic
from hubbub.contracts.channels import ChannelKind
from hubbub.contracts.events import EventType

WORKSPACE = (ChannelKind.WORKSPACE,)
WORKSPACE_AND_USER = (ChannelKind.WORKSPACE, ChannelKind.USER)


class ResourceDeleted(ResourcePublic):
    """The resource as it was, with ``deleted_at`` set."""

    hard: bool = Field(description="Gone for good (true) or moved to the trash (false)")


WORKSPACE_CREATED = EventType(
    "workspace.created", WorkspacePublic, WORKSPACE, "a workspace was created"
)
WORKSPACE_UPDATED = EventType(
    "workspace.updated", WorkspacePublic, WORKSPACE, "a workspace was renamed"
)
WORKSPACE_DELETED = EventType(
    "workspace.deleted",
    WorkspacePublic,
    WORKSPACE_AND_USER,
    "a workspace was deleted (as it was); also on `user:<id>` of every member",
)
MEMBER_ADDED = EventType(
    "member.added",
    MemberPublic,
    WORKSPACE_AND_USER,
    "someone joined (added, or accepted an invitation); also on `user:<id>` of that member",
)
MEMBER_UPDATED = EventType(
    "member.updated",
    MemberPublic,
    WORKSPACE_AND_USER,
    "a member's role changed; also on `user:<id>` of that member",
)
MEMBER_REMOVED = EventType(
    "member.removed",
    MemberPublic,
    WORKSPACE_AND_USER,
    "a member was removed or left; also on `user:<id>` of that member",
)
INVITATION_CREATED = EventType(
    "invitation.created", InvitationPublic, WORKSPACE, "someone was invited"
)
INVITATION_DECLINED = EventType(
    "invitation.declined", InvitationPublic, WORKSPACE, "the invited person declined"
)
INVITATION_REVOKED = EventType(
    "invitation.revoked", InvitationPublic, WORKSPACE, "an admin revoked an invitation"
)
RESOURCE_CREATED = EventType(
    "resource.created", ResourcePublic, WORKSPACE, "a resource was created"
)
RESOURCE_UPDATED = EventType(
    "resource.updated", ResourcePublic, WORKSPACE, "a resource changed (the new `version`)"
)
RESOURCE_DELETED = EventType(
    "resource.deleted",
    ResourceDeleted,
    WORKSPACE,
    "a resource went to the trash (`hard: false`) or for good (`hard: true`)",
)
RESOURCE_RESTORED = EventType(
    "resource.restored", ResourcePublic, WORKSPACE, "a resource came back from the trash"
)
USER_UPDATED = EventType(
    "user.updated",
    UserPublic,
    (ChannelKind.USER,),
    "the account changed (display name, role, active) — on that user's own channel",
)

EVENT_TYPES: dict[str, EventType] = {
    event.name: event
    for event in (
        WORKSPACE_CREATED,
        WORKSPACE_UPDATED,
        WORKSPACE_DELETED,
        MEMBER_ADDED,
        MEMBER_UPDATED,
        MEMBER_REMOVED,
        INVITATION_CREATED,
        INVITATION_DECLINED,
        INVITATION_REVOKED,
        RESOURCE_CREATED,
        RESOURCE_UPDATED,
        RESOURCE_DELETED,
        RESOURCE_RESTORED,
        USER_UPDATED,
    )
}


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
