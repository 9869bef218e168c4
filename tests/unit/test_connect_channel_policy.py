"""``ChannelAuthorizer.allowed_by_policy``: what a subscribe learns without I/O. The
policy alone allows public channels and one's own user channel, refuses another user's
channel and callers that are not users, and leaves membership channels to ``check``."""

from __future__ import annotations

from typing import Any

import pytest

from hub.ws.authz import ChannelAuthorizer
from hubbub.contracts.api.channels import ChannelAction
from hubbub.contracts.channels import DEFAULT_POLICIES, Channel
from hubbub.contracts.envelope import Caller, CallerKind
from hubbub.contracts.errors import Forbidden, Unauthorized

ALICE = Caller(kind=CallerKind.USER, user_id="alice", role="member", session_id="s1")


class _NoIO:
    """Bus and Redis that fail the test if the authorizer reaches for them."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"I/O attempted: {name}")


def _authorizer() -> ChannelAuthorizer:
    return ChannelAuthorizer(_NoIO(), _NoIO(), _NoIO(), dict(DEFAULT_POLICIES))  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["public:lobby", "user:alice"])
async def test_the_policy_alone_allows(name: str) -> None:
    authorizer = _authorizer()
    channel = Channel.parse(name)
    assert authorizer.allowed_by_policy(ALICE, channel, ChannelAction.SUBSCRIBE) is True
    await authorizer.check(ALICE, channel, ChannelAction.SUBSCRIBE)  # no I/O either


def test_another_users_channel_and_a_non_user_are_refused() -> None:
    authorizer = _authorizer()
    with pytest.raises(Forbidden):
        authorizer.allowed_by_policy(ALICE, Channel.parse("user:bob"), ChannelAction.SUBSCRIBE)
    with pytest.raises(Unauthorized):
        authorizer.allowed_by_policy(
            Caller(), Channel.parse("public:lobby"), ChannelAction.SUBSCRIBE
        )


def test_membership_is_left_to_check() -> None:
    channel = Channel.parse("workspace:" + "0" * 8 + "-0000-0000-0000-" + "0" * 12)
    assert _authorizer().allowed_by_policy(ALICE, channel, ChannelAction.SUBSCRIBE) is False
