"""The socket's ``publish`` spends the user's byte budget only on what may be stored: a
publication too large for a NATS message as stored (``too_large``, nothing sent) gives
its bytes back, as one JetStream refused does."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest
from nats.aio.client import Client as NATS

from hub.ws import commands as cmd
from hub.ws.authz import ChannelAuthorizer
from hub.ws.channels import ChannelCommands
from hub.ws.connection import Connection
from hub.ws.history import History
from hub.ws.presence import Presence
from hubbub.config import Rate, Settings
from hubbub.contracts.channels import DEFAULT_POLICIES
from hubbub.contracts.errors import TooLarge
from hubbub.contracts.subjects import Subjects


class Allowed:
    async def check(self, *_: Any) -> None:
        return None


class SmallNats:
    """A NATS server whose messages are smaller than the publication: nothing is sent."""

    max_payload = 100

    def jetstream(self) -> Any:
        raise AssertionError("nothing is sent when it cannot fit")


def commands(budget: int) -> ChannelCommands:
    settings = Settings(_env_file=None, ws_publish_bytes_per_user=Rate(budget, 60))  # type: ignore[call-arg]
    return ChannelCommands(
        settings=settings,
        nc=cast(NATS, SmallNats()),
        subjects=Subjects("t"),
        history=cast(History, None),
        authorizer=cast(ChannelAuthorizer, Allowed()),
        presence=cast(Presence, None),
        policies=dict(DEFAULT_POLICIES),
    )


async def test_a_publication_too_large_to_store_spends_no_budget() -> None:
    channels = commands(budget=600)  # room for one publication of about 400 bytes
    conn = cast(Connection, SimpleNamespace(caller=object(), user_id="u1"))
    publish = cmd.Publish(op="publish", id=1, channel="chat:w1", data={"text": "x" * 350})

    for _ in range(3):  # each is too large again, never rate_limited
        with pytest.raises(TooLarge):
            await channels.publish(conn, publish)

    assert channels.budgets.take("u1", 600) is None  # the whole budget is still there
