"""The catalog of every public operation. Domain modules add theirs here."""

from __future__ import annotations

from hubbub.contracts.api import (
    access,
    activity,
    apikeys,
    auth,
    channels,
    invitations,
    members,
    resources,
    system,
    users,
    workspaces,
)
from hubbub.contracts.operations import Catalog


def default_catalog() -> Catalog:
    catalog = Catalog()
    for part in (
        system,
        access,
        auth,
        users,
        apikeys,
        channels,
        workspaces,
        members,
        invitations,
        resources,
        activity,
    ):
        catalog.extend(part.catalog)
    return catalog


__all__ = [
    "access",
    "activity",
    "apikeys",
    "auth",
    "channels",
    "default_catalog",
    "invitations",
    "members",
    "resources",
    "system",
    "users",
    "workspaces",
]
