"""Channels: what clients subscribe to, and how a channel name maps to NATS subjects.

A channel is ``<kind>:<name>``. ``kind`` selects a policy (who may subscribe, whether
clients may publish, history retention, slow-consumer behaviour); ``name`` is 1-64
characters of ``[A-Za-z0-9_-]``. No dots, no wildcards: a channel is always exactly one
NATS subject token, so no client can widen a subscription with ``*`` or ``>``.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from enum import StrEnum

from hubbub.contracts.errors import BadRequest

_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_CHANNEL_LENGTH = 80


class ChannelKind(StrEnum):
    WORKSPACE = "workspace"  # workspace members; domain events (resources, members)
    USER = "user"  # one user's personal notifications
    CHAT = "chat"  # workspace members; members may publish from their clients
    PUBLIC = "public"  # any signed-in user; backend services publish
    TICKER = "ticker"  # any signed-in user; high-rate feeds from backend services


# A channel name as a JSON-schema pattern, for documents (``Channel.parse`` is the rule).
CHANNEL_PATTERN = "^(" + "|".join(kind.value for kind in ChannelKind) + r"):[A-Za-z0-9_-]{1,64}$"


class SubscribeRule(StrEnum):
    WORKSPACE_MEMBER = "workspace_member"
    SELF = "self"
    ANY_USER = "any_user"


class SlowConsumerPolicy(StrEnum):
    DISCONNECT = "disconnect"  # close with 4009; the client recovers from history
    DROP_OLDEST = "drop-oldest"  # drop queued publications, signal a gap
    CONFLATE = "conflate-by-key"  # keep only the newest publication per data key


@dataclass(frozen=True, slots=True)
class ChannelPolicy:
    subscribe: SubscribeRule
    client_publish: bool
    slow_consumer: SlowConsumerPolicy
    history_max_age_s: float
    history_max_msgs: int  # per channel (per NATS subject)
    presence: bool = False  # track who is on the channel; join/leave pushes
    conflate_key: str = "key"  # conflate-by-key: the data field that names the key
    # All channels of the kind together: past it JetStream drops the oldest publications,
    # so no publisher (a chatty user, a runaway service) can fill the server's disk.
    # JetStream reserves this much of the server's storage for the stream up front.
    history_max_bytes: int = 256 * 1024 * 1024


DEFAULT_POLICIES: dict[ChannelKind, ChannelPolicy] = {
    ChannelKind.WORKSPACE: ChannelPolicy(
        SubscribeRule.WORKSPACE_MEMBER,
        False,
        SlowConsumerPolicy.DISCONNECT,
        86_400,
        10_000,
        presence=True,
    ),
    ChannelKind.USER: ChannelPolicy(
        SubscribeRule.SELF, False, SlowConsumerPolicy.DISCONNECT, 7 * 86_400, 1_000
    ),
    ChannelKind.CHAT: ChannelPolicy(
        SubscribeRule.WORKSPACE_MEMBER,
        True,
        SlowConsumerPolicy.DISCONNECT,
        86_400,
        1_000,
        presence=True,
        history_max_bytes=128 * 1024 * 1024,  # the one kind browsers publish to
    ),
    ChannelKind.PUBLIC: ChannelPolicy(
        SubscribeRule.ANY_USER, False, SlowConsumerPolicy.DISCONNECT, 3_600, 1_000
    ),
    ChannelKind.TICKER: ChannelPolicy(
        SubscribeRule.ANY_USER,
        False,
        SlowConsumerPolicy.CONFLATE,
        600,
        100,
        history_max_bytes=64 * 1024 * 1024,
    ),
}


# Kinds whose name is a row id (a UUID): only its canonical spelling is accepted.
_NAMED_BY_ID = frozenset({ChannelKind.WORKSPACE, ChannelKind.CHAT, ChannelKind.USER})


def _non_canonical_id(name: str) -> bool:
    """True when ``name`` is a UUID spelled other than ``str(uuid.UUID(name))``."""
    try:
        return str(uuid.UUID(name)) != name
    except ValueError:
        return False  # not an id at all: no id channel can match it, nothing to alias


@dataclass(frozen=True, slots=True)
class Channel:
    kind: ChannelKind
    name: str

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.name}"

    @staticmethod
    def parse(raw: object) -> Channel:
        """Validate a channel name from outside; raises BadRequest with the reason."""
        if not isinstance(raw, str):
            raise BadRequest("channel must be a string")
        if len(raw) > MAX_CHANNEL_LENGTH:
            raise BadRequest(f"channel name longer than {MAX_CHANNEL_LENGTH} characters")
        kind_text, sep, name = raw.partition(":")
        if not sep:
            raise BadRequest("channel must look like <kind>:<name>", channel=raw)
        try:
            kind = ChannelKind(kind_text)
        except ValueError:
            raise BadRequest(f"unknown channel kind {kind_text!r}", channel=raw) from None
        if not _NAME.fullmatch(name):
            raise BadRequest("channel name must be 1-64 characters of A-Z a-z 0-9 _ -", channel=raw)
        if kind in _NAMED_BY_ID and _non_canonical_id(name):
            # One spelling per channel: the ACL cache, revocations and history all key on
            # the name, so `workspace:<UPPER>` must not be a second way in.
            raise BadRequest(
                f"{kind.value} channel names are ids in canonical form "
                "(lower-case, hyphenated UUID)",
                channel=raw,
            )
        return Channel(kind, name)

    @staticmethod
    def workspace(workspace_id: object) -> Channel:
        return Channel(ChannelKind.WORKSPACE, str(workspace_id))

    @staticmethod
    def user(user_id: object) -> Channel:
        return Channel(ChannelKind.USER, str(user_id))
