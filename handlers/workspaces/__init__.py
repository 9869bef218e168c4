"""Workspaces: membership and roles, invitations, the activity log, and the answers to
``channels.authorize`` for workspace channels. Resources live in ``handlers.resources``."""

from __future__ import annotations

from handlers.registry import Registry
from handlers.workspaces import activity, channels, crud, invitations, members

registry = Registry()
for part in (crud, members, invitations, activity, channels):
    registry.extend(part.registry)

__all__ = ["registry"]
