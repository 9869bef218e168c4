"""What the hubs ask the workers about access that Redis may not show yet.

A change that takes access away does its Redis work after its commit — deny-list
entries for revoked sessions and deactivated users, the deletion of cached channel
answers — and keeps that work in PostgreSQL (``pending_invalidations``) until it is done.
While Redis refuses it (down, a read-only replica, out of memory), only the database
knows of the change. A hub that missed the change's control message (it started, or its
NATS link dropped, meanwhile) would take Redis's word for it, so each load of its
deny-list asks ``access.pending`` first and merges the answer (``hub/revocations.py``).

The answer comes in pages: ``after`` is where the next one starts, ``None`` on the last.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from hubbub.contracts.operations import Access, Catalog, Operation


class PendingAccessParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    after: int = Field(default=0, ge=0)  # the previous page's ``after``; 0 for the first


class PendingAccess(BaseModel):
    sessions: list[str]  # revoked session ids
    users: list[str]  # deactivated user ids (still deactivated now)
    # user id → the channels whose cached answers for that user may be stale
    channels: dict[str, list[str]]
    until: float  # unix time until which these sessions and users are to be denied
    after: int | None = None  # more to come: ask again with this


catalog = Catalog()

pending = catalog.add(
    Operation(
        name="access.pending",
        params=PendingAccessParams,
        result=PendingAccess,
        access=Access.INTERNAL,
        read_only=True,  # a plain read: no BEGIN/COMMIT, resent across a NATS reconnect
        summary="Access taken away whose Redis work is still pending",
        timeout=3.0,
    )
)
