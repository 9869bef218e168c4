"""The history streams JetStream keeps for each channel kind, as configured."""

from __future__ import annotations

from dataclasses import replace

from nats.aio.client import Client as NATS

from hubbub.config import Settings
from hubbub.contracts.channels import DEFAULT_POLICIES, ChannelKind
from hubbub.contracts.subjects import Subjects
from hubbub.streams import DUPLICATE_WINDOW_S, delete_streams, ensure_streams


async def test_a_kind_that_keeps_history_for_a_minute_gets_its_stream(
    settings: Settings, nc: NATS
) -> None:
    """JetStream refuses a duplicate window longer than the stream's max age: a kind with
    a short history de-duplicates re-sent events for as long as it keeps them."""
    subjects = Subjects(settings.namespace + "short")
    short = replace(DEFAULT_POLICIES[ChannelKind.TICKER], history_max_age_s=60)
    js = nc.jetstream()
    try:
        await ensure_streams(js, subjects, {ChannelKind.TICKER: short})
        info = await js.stream_info(subjects.stream(ChannelKind.TICKER))
        assert info.config.max_age == 60
        assert info.config.duplicate_window == 60
        await ensure_streams(js, subjects, {ChannelKind.TICKER: short})  # and updates it
    finally:
        await delete_streams(js, subjects)


async def test_a_kind_that_keeps_history_for_good_has_the_full_duplicate_window(
    settings: Settings, nc: NATS
) -> None:
    subjects = Subjects(settings.namespace + "forever")
    forever = replace(DEFAULT_POLICIES[ChannelKind.PUBLIC], history_max_age_s=0)
    js = nc.jetstream()
    try:
        await ensure_streams(js, subjects, {ChannelKind.PUBLIC: forever})
        info = await js.stream_info(subjects.stream(ChannelKind.PUBLIC))
        assert info.config.duplicate_window == DUPLICATE_WINDOW_S
    finally:
        await delete_streams(js, subjects)
