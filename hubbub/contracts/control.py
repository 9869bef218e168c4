"""Control messages about a user's access, from the workers to every hub.

Revoking access must take effect at once on every hub, without a database hit per
request. So a worker that revokes does two things after its transaction commits:

1. it writes the revoked session ids (or the deactivated user id) into Redis, in sorted
   sets scored by the unix time until which the entry matters — when every access token
   that could carry it has expired — and prunes entries past their time;
2. it publishes one of these messages on ``ctl.user.<user_id>`` (core NATS, JSON).

A hub keeps the deny-list in memory: it subscribes to ``ctl.user.*`` first, then loads the
sorted sets, and loads them again after a NATS reconnect (it may have missed messages).

Message shapes::

    {"type": "sessions_revoked", "user_id": "<uuid>", "sids": ["<uuid>", ...], "until": 1.7e9}
    {"type": "deactivated", "user_id": "<uuid>", "until": 1.7e9}
    {"type": "reactivated", "user_id": "<uuid>"}
    {"type": "membership_revoked", "user_id": "<uuid>", "channels": ["workspace:<id>", ...]}
    {"type": "membership_changed", "user_id": "<uuid>", "channels": ["workspace:<id>", ...]}

``until`` is a unix time in seconds. ``sessions_revoked`` follows a logout, a password
change or reset, or a reused refresh token; ``deactivated`` follows an admin's
deactivation (whose sessions are revoked as well, in a ``sessions_revoked``).
``membership_revoked`` follows a user's removal from a workspace: hubs drop the user's
subscriptions to those channels at once (with an ``unsubscribed`` push).
``membership_changed`` follows any other change of a user's membership (a new role, a
join): the user keeps the subscriptions, but what the channels' cached answers say (may
they publish?) may be stale, so for as long as such an answer lives hubs believe it only
where a worker, asked since the change, said the same. (A hub of an older version
ignores the type, with a warning.)
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

REVOKED_SESSIONS = ("revoked", "sessions")  # Redis key parts: zset sid → until
DEACTIVATED_USERS = ("revoked", "users")  # Redis key parts: zset user id → until


class SessionsRevoked(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: Literal["sessions_revoked"] = "sessions_revoked"
    user_id: str
    sids: tuple[str, ...]
    until: float


class Deactivated(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: Literal["deactivated"] = "deactivated"
    user_id: str
    until: float


class Reactivated(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: Literal["reactivated"] = "reactivated"
    user_id: str


class MembershipRevoked(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: Literal["membership_revoked"] = "membership_revoked"
    user_id: str
    channels: tuple[str, ...]


class MembershipChanged(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: Literal["membership_changed"] = "membership_changed"
    user_id: str
    channels: tuple[str, ...]


ControlMessage = Annotated[
    SessionsRevoked | Deactivated | Reactivated | MembershipRevoked | MembershipChanged,
    Field(discriminator="type"),
]
control_message: TypeAdapter[ControlMessage] = TypeAdapter(ControlMessage)
