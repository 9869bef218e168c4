"""What a failed store tells the publisher: whether the publication may be stored."""

from __future__ import annotations

from typing import Any

import nats.errors
import pytest
from nats.js.errors import NoStreamResponseError

from hub.publications import NotStored, store
from hubbub.contracts.errors import TooLarge, Unavailable


class FailingJetStream:
    max_payload = 1_048_576

    def __init__(self, error: Exception) -> None:
        self.error = error

    def jetstream(self) -> FailingJetStream:
        return self

    async def publish(self, *args: Any, **kwargs: Any) -> Any:
        raise self.error


@pytest.mark.parametrize(
    "error",
    [nats.errors.NoRespondersError(), NoStreamResponseError(), nats.errors.ConnectionClosedError()],
)
async def test_a_refusal_or_a_message_never_sent_is_known_not_stored(error: Exception) -> None:
    with pytest.raises(NotStored):
        await store(FailingJetStream(error), "evt.public.x", b"{}")  # type: ignore[arg-type]


@pytest.mark.parametrize("error", [nats.errors.TimeoutError(), TimeoutError()])
async def test_no_answer_in_time_may_have_been_stored(error: Exception) -> None:
    with pytest.raises(Unavailable) as raised:
        await store(FailingJetStream(error), "evt.public.x", b"{}")  # type: ignore[arg-type]
    assert not isinstance(raised.value, NotStored)


async def test_a_message_the_client_finds_over_the_limit_is_too_large() -> None:
    """The server's limit, learnt again after a reconnect, may be smaller than the one
    checked before sending: nats-py's own check is the same refusal."""
    failing = FailingJetStream(nats.errors.MaxPayloadError())
    with pytest.raises(TooLarge):
        await store(failing, "evt.public.x", b"{}")  # type: ignore[arg-type]
