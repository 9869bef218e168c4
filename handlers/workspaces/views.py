"""Rows → public representations (the API's and the events' ``data``)."""

from __future__ import annotations

from handlers.accounts.models import User
from handlers.workspaces.models import Activity, Invitation, Member, Workspace
from hubbub.contracts.api.activity import ActivityPublic
from hubbub.contracts.api.invitations import InvitationPublic, InvitationStatus
from hubbub.contracts.api.members import MemberPublic
from hubbub.contracts.api.workspaces import MyWorkspace, WorkspacePublic, WorkspaceRole


def workspace_public(workspace: Workspace) -> WorkspacePublic:
    return WorkspacePublic(
        id=workspace.id,
        name=workspace.name,
        version=workspace.version,
        created_by=workspace.created_by,
        created_at=workspace.created_at,
        updated_at=workspace.updated_at,
    )


def my_workspace(workspace: WorkspacePublic, role: WorkspaceRole) -> MyWorkspace:
    return MyWorkspace(**workspace.model_dump(), role=role)


def member_public(member: Member, user: User) -> MemberPublic:
    return MemberPublic(
        workspace_id=member.workspace_id,
        user_id=member.user_id,
        email=user.email,
        display_name=user.display_name,
        role=WorkspaceRole(member.role),
        joined_at=member.joined_at,
        updated_at=member.updated_at,
    )


def invitation_public(invitation: Invitation) -> InvitationPublic:
    return InvitationPublic(
        id=invitation.id,
        workspace_id=invitation.workspace_id,
        email=invitation.email,
        role=WorkspaceRole(invitation.role),
        status=InvitationStatus(invitation.status),
        invited_by=invitation.invited_by,
        created_at=invitation.created_at,
        expires_at=invitation.expires_at,
    )


def activity_public(row: Activity) -> ActivityPublic:
    return ActivityPublic(
        id=row.id,
        workspace_id=row.workspace_id,
        actor_id=row.actor_id,
        action=row.action,
        subject_type=row.subject_type,
        subject_id=row.subject_id,
        before_version=row.before_version,
        after_version=row.after_version,
        at=row.at,
        summary=row.summary,
    )
