"""The JetStream streams that keep channel history: one per channel kind.

Each stream captures ``evt.<kind>.>`` with its kind's retention (max age, max messages
per channel, max bytes for the whole kind) and republishes every stored message on
``live.<kind>.>`` with headers ``Nats-Sequence`` (the publication's offset) and
``Nats-Last-Sequence`` (the previous offset on the same channel). Hubs listen on
``live.*``: the offset comes with each publication, and a hub can tell when it missed
one and fill the gap from the stream.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RePublish, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

from hubbub.contracts.channels import DEFAULT_POLICIES, ChannelKind, ChannelPolicy
from hubbub.contracts.subjects import Subjects

log = logging.getLogger(__name__)

# How long JetStream remembers a Nats-Msg-Id: an outbox row re-sent within this window
# (say, after a worker died between publishing and marking it sent) is stored once.
DUPLICATE_WINDOW_S = 600.0


def stream_config(subjects: Subjects, kind: ChannelKind, policy: ChannelPolicy) -> StreamConfig:
    return StreamConfig(
        name=subjects.stream(kind),
        description=f"Hubbub history of {kind.value} channels",
        subjects=[subjects.event_wildcard(kind)],
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        storage=StorageType.FILE,
        max_age=policy.history_max_age_s,
        max_msgs_per_subject=policy.history_max_msgs,
        max_bytes=policy.history_max_bytes,
        duplicate_window=DUPLICATE_WINDOW_S,
        allow_direct=True,
        republish=RePublish(src=subjects.event_wildcard(kind), dest=subjects.live_wildcard(kind)),
    )


async def ensure_streams(
    js: JetStreamContext,
    subjects: Subjects,
    policies: Mapping[ChannelKind, ChannelPolicy] = DEFAULT_POLICIES,
) -> None:
    """Create or update the streams so they match the configured policies (idempotent)."""
    for kind, policy in policies.items():
        config = stream_config(subjects, kind, policy)
        try:
            await js.stream_info(config.name or "")
        except NotFoundError:
            try:
                await js.add_stream(config)
                log.info("created stream %s", config.name)
            except BadRequestError as exc:  # created by a racing process meanwhile
                if "already in use" not in str(exc):
                    raise
            continue
        await js.update_stream(config)


async def delete_streams(js: JetStreamContext, subjects: Subjects) -> None:
    for kind in ChannelKind:
        with contextlib.suppress(NotFoundError):
            await js.delete_stream(subjects.stream(kind))
