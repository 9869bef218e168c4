"""The WebSocket protocol's frames as models: every command, its reply, every push.

``docs/protocol.md`` explains them; the AsyncAPI document (``hubbub/contracts/asyncapi.py``)
is generated from these models. The hub parses commands with them
(``hub/ws/commands.py``) and writes replies and pushes as bytes for speed
(``hub/ws/frames.py``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hubbub.contracts.errors import ErrorCode
from hubbub.contracts.protocol import Op, Push

# Integers a JavaScript client can hold exactly (and the hub can add one to: history
# reads ask JetStream for ``offset + 1`` as a 64-bit integer).
MAX_INT = 2**53
CommandId = Field(ge=0, le=MAX_INT, description="Echoed by the reply")


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: int = CommandId


class Since(BaseModel):
    """A position in a channel's history: the last publication seen."""

    model_config = ConfigDict(extra="forbid")

    offset: int = Field(ge=0, le=MAX_INT)
    epoch: str = Field(max_length=40)


class Connect(_Command):
    """The first frame, within 5 s: sign the socket in with an access JWT."""

    op: Literal[Op.CONNECT]
    token: str = Field(min_length=1, max_length=4096)


class Refresh(_Command):
    """A fresh access JWT of the same user, before the current one ends."""

    op: Literal[Op.REFRESH]
    token: str = Field(min_length=1, max_length=4096)


class Subscribe(_Command):
    """Receive a channel's publications; with ``since``, those missed after it too."""

    op: Literal[Op.SUBSCRIBE]
    channel: str = Field(max_length=200)
    since: Since | None = None


class Unsubscribe(_Command):
    op: Literal[Op.UNSUBSCRIBE]
    channel: str = Field(max_length=200)


class Rpc(_Command):
    """Call an operation (the same as its REST route); ``method`` is its name."""

    op: Literal[Op.RPC]
    method: str = Field(max_length=100)
    params: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = None


class Publish(_Command):
    """Publish on a channel whose kind lets clients publish (``chat:``)."""

    op: Literal[Op.PUBLISH]
    channel: str = Field(max_length=200)
    data: dict[str, Any]


class Presence(_Command):
    """Who is on a channel with presence now."""

    op: Literal[Op.PRESENCE]
    channel: str = Field(max_length=200)


class History(_Command):
    """A page of a channel's stored publications."""

    op: Literal[Op.HISTORY]
    channel: str = Field(max_length=200)
    since: Since | None = None
    limit: int = Field(default=100, ge=1, le=1000)


class Pong(BaseModel):
    """The answer to a ``ping`` push; no reply."""

    model_config = ConfigDict(extra="ignore")

    op: Literal[Op.PONG]
    id: int | None = None


COMMANDS: dict[Op, type[BaseModel]] = {
    Op.CONNECT: Connect,
    Op.REFRESH: Refresh,
    Op.SUBSCRIBE: Subscribe,
    Op.UNSUBSCRIBE: Unsubscribe,
    Op.RPC: Rpc,
    Op.PUBLISH: Publish,
    Op.PRESENCE: Presence,
    Op.HISTORY: History,
    Op.PONG: Pong,
}

# ---------------------------------------------------------------- results


class HubUser(BaseModel):
    id: str
    role: str


class ConnectResult(BaseModel):
    client: str = Field(description="This socket's id, as presence names it")
    user: HubUser
    ping_interval: float = Field(description="Seconds between the hub's pings")
    expires_in: int = Field(description="Seconds until the access token ends")


class RefreshResult(BaseModel):
    expires_in: int


class StoredPublication(BaseModel):
    offset: int
    data: dict[str, Any]


class SubscribeResult(BaseModel):
    channel: str
    offset: int
    epoch: str
    recovered: bool = Field(description="Every publication after `since` is in `publications`")
    publications: list[StoredPublication]


class EmptyResult(BaseModel):
    """``{}``."""

    model_config = ConfigDict(extra="forbid")


class PublishResult(BaseModel):
    offset: int


class PresenceMember(BaseModel):
    user: str
    client: str
    joined_at: float = Field(description="Unix seconds")


class PresenceResult(BaseModel):
    members: list[PresenceMember]


class HistoryResult(BaseModel):
    publications: list[StoredPublication]
    offset: int
    epoch: str


RESULTS: dict[Op, type[BaseModel]] = {
    Op.CONNECT: ConnectResult,
    Op.REFRESH: RefreshResult,
    Op.SUBSCRIBE: SubscribeResult,
    Op.UNSUBSCRIBE: EmptyResult,
    Op.PUBLISH: PublishResult,
    Op.PRESENCE: PresenceResult,
    Op.HISTORY: HistoryResult,
}


class ErrorBody(BaseModel):
    code: ErrorCode
    message: str
    status: int = Field(description="The HTTP status the same failure has over REST")
    details: dict[str, Any] | None = None


class ErrorFrame(BaseModel):
    """A failed command; ``id`` is null when the frame had no usable one."""

    id: int | None
    error: ErrorBody


# ---------------------------------------------------------------- pushes


class PresenceEntry(BaseModel):
    user: str
    client: str


class ConnectedPush(ConnectResult):
    """The answer to a connect made in the upgrade request (``Authorization: Bearer``):
    the fields of ``connect``'s result. The first frame the hub sends such a socket."""

    push: Literal[Push.CONNECTED]


class SubscribedPush(SubscribeResult):
    """A subscription the upgrade request asked for (``?subscribe=<channel>``), now live:
    the fields of ``subscribe``'s result (never recovered: the upgrade carries no
    ``since``). One per channel, in the request's order, right after ``connected``."""

    push: Literal[Push.SUBSCRIBED]


class PubPush(BaseModel):
    """A publication: a domain event (see the channels), a chat message (`chat:` channels:
    the sender's object wrapped with who sent it and when) or a service's JSON object."""

    push: Literal[Push.PUB]
    channel: str
    offset: int = Field(description="Rises strictly per channel; not contiguous")
    data: dict[str, Any]


class PresencePush(BaseModel):
    """Who came and who went since the last diff (at most one per channel per 200 ms)."""

    push: Literal[Push.PRESENCE]
    channel: str
    joined: list[PresenceEntry]
    left: list[PresenceEntry]


class UnsubscribedPush(BaseModel):
    """The hub dropped a subscription (e.g. membership removed: 4003)."""

    push: Literal[Push.UNSUBSCRIBED]
    channel: str
    code: int
    reason: str


class GapPush(BaseModel):
    """Publications were skipped on a drop-oldest or conflate channel."""

    push: Literal[Push.GAP]
    channel: str
    dropped: int


class ExpiringPush(BaseModel):
    """The token ends soon: send ``refresh``."""

    model_config = ConfigDict(populate_by_name=True)

    push: Literal[Push.EXPIRING]
    in_: int = Field(alias="in", description="Seconds until the token ends")


class DisconnectPush(BaseModel):
    """Sent just before the hub closes the socket with ``code``."""

    push: Literal[Push.DISCONNECT]
    code: int
    reason: str
    reconnect: bool


class PingPush(BaseModel):
    """Answer with ``{"op": "pong"}``."""

    push: Literal[Push.PING]


PUSHES: dict[Push, type[BaseModel]] = {
    Push.CONNECTED: ConnectedPush,
    Push.SUBSCRIBED: SubscribedPush,
    Push.PUB: PubPush,
    Push.PRESENCE: PresencePush,
    Push.UNSUBSCRIBED: UnsubscribedPush,
    Push.GAP: GapPush,
    Push.EXPIRING: ExpiringPush,
    Push.DISCONNECT: DisconnectPush,
    Push.PING: PingPush,
}
