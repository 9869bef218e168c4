"""``history`` pages through one epoch of a channel's history: a ``since`` of another
epoch (the history was reset meanwhile) is ``conflict``, naming the current epoch, not a
page of the new history spliced after the old one's offsets (subscribe answers it with
``recovered: false`` instead, as live publications follow there either way)."""

from __future__ import annotations

import pytest
from nats.aio.client import Client as NATS

from hubbub.client import RemoteError
from hubbub.config import Settings
from hubbub.contracts.channels import Channel
from hubbub.contracts.subjects import Subjects
from tests.e2e.conftest import ClientFactory


async def test_a_history_page_since_another_epoch_is_a_conflict_naming_the_current_one(
    client: ClientFactory, nc: NATS, settings: Settings
) -> None:
    subject = Subjects(settings.namespace).event(Channel.parse("public:paged"))
    await nc.jetstream().publish(subject, b'{"n":1}')
    c = await client("u1")
    first = await c.history("public:paged")

    with pytest.raises(RemoteError) as refused:
        await c.history("public:paged", since=(first["offset"], "another-epoch"))

    assert (refused.value.code, refused.value.status) == ("conflict", 409)
    assert refused.value.details == {"epoch": first["epoch"]}
