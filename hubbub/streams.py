"""The JetStream streams that keep channel history: one per channel kind.

Each stream captures ``evt.<kind>.>`` with its kind's retention (max age, max messages
per channel, max bytes for the whole kind) and republishes every stored message on
``live.<kind>.>`` with headers ``Nats-Sequence`` (the publication's offset) and
``Nats-Last-Sequence`` (the previous offset on the same channel). Hubs listen on
``live.*``: the offset comes with each publication, and a hub can tell when it missed
one and fill the gap from the stream.

On a NATS cluster each stream is kept by ``replicas`` nodes (``stream_replicas``: three
of a cluster of three or more), so it stays readable and writable while one is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RePublish, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError, ServiceUnavailableError

from hubbub.contracts.channels import DEFAULT_POLICIES, ChannelKind, ChannelPolicy
from hubbub.contracts.subjects import Subjects
from hubbub.natsconn import nats_servers

if TYPE_CHECKING:
    from hubbub.config import Settings

log = logging.getLogger(__name__)

# How long JetStream remembers a Nats-Msg-Id: an outbox row re-sent within this window
# (say, after a worker died between publishing and marking it sent) is stored once. A
# kind that keeps its history for less has a window as long as its history (JetStream
# allows no longer one).
DUPLICATE_WINDOW_S = 600.0


# How long a cluster that has just started may take to elect its JetStream leader and
# learn of all its nodes.
JETSTREAM_READY_TIMEOUT_S = 30.0
NO_SUITABLE_PEERS = 10005  # JetStream's error code: the replicas cannot be placed


def stream_replicas(settings: Settings) -> int:
    """``HUBBUB_NATS_REPLICAS``, else one per server in ``NATS_URL`` up to three (a
    cluster's full list gives 3; a single URL gives 1)."""
    if settings.nats_replicas:
        return settings.nats_replicas
    return max(1, min(3, len(nats_servers(settings.nats_url or ""))))


def stream_config(
    subjects: Subjects, kind: ChannelKind, policy: ChannelPolicy, replicas: int = 1
) -> StreamConfig:
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
        duplicate_window=duplicate_window(policy),
        allow_direct=True,
        num_replicas=replicas,
        republish=RePublish(src=subjects.event_wildcard(kind), dest=subjects.live_wildcard(kind)),
    )


def duplicate_window(policy: ChannelPolicy) -> float:
    """``DUPLICATE_WINDOW_S``, or the kind's history max age if that is shorter (and not 0,
    JetStream's "for good")."""
    if policy.history_max_age_s > 0:
        return min(DUPLICATE_WINDOW_S, policy.history_max_age_s)
    return DUPLICATE_WINDOW_S


async def wait_for_jetstream(
    js: JetStreamContext, timeout: float = JETSTREAM_READY_TIMEOUT_S
) -> None:
    """Return once JetStream answers: at once on a single server; on a cluster that has
    just started, once its nodes have elected a leader (a few seconds)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            await js.account_info()
            return
        except (ServiceUnavailableError, NoRespondersError, NatsTimeoutError) as exc:
            if loop.time() > deadline:
                raise RuntimeError(f"JetStream is not available after {timeout:g}s: {exc}") from exc
            log.info("waiting for JetStream (%s)", type(exc).__name__)
            await asyncio.sleep(0.2)


async def ensure_streams(
    js: JetStreamContext,
    subjects: Subjects,
    policies: Mapping[ChannelKind, ChannelPolicy] = DEFAULT_POLICIES,
    *,
    replicas: int | None = None,
) -> None:
    """Create or update the streams so they match the configured policies (idempotent).

    ``replicas``: how many nodes keep each stream (``stream_replicas(settings)``). None
    keeps an existing stream's count and creates new ones with 1: a worker that starts
    never undoes what ``hubbub migrate`` (or ``hubbub up``) set.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + JETSTREAM_READY_TIMEOUT_S
    await wait_for_jetstream(js)
    for kind, policy in policies.items():
        while True:
            try:
                await _ensure_stream(js, subjects, kind, policy, replicas)
                break
            except BadRequestError as exc:
                # A cluster that has just started knows fewer nodes than it has for a
                # moment: the replicas cannot be placed yet.
                if exc.err_code != NO_SUITABLE_PEERS:
                    raise
                if loop.time() > deadline:
                    raise RuntimeError(
                        f"JetStream cannot place {replicas} replicas of "
                        f"{subjects.stream(kind)}: {exc.description} (fewer nodes than "
                        "HUBBUB_NATS_REPLICAS, or NATS_URL lists more servers than are up?)"
                    ) from exc
                log.info("waiting for the cluster's nodes (%s)", exc.description)
                await asyncio.sleep(0.2)


async def _ensure_stream(
    js: JetStreamContext,
    subjects: Subjects,
    kind: ChannelKind,
    policy: ChannelPolicy,
    replicas: int | None,
) -> None:
    name = subjects.stream(kind)
    try:
        info = await js.stream_info(name)
    except NotFoundError:
        config = stream_config(subjects, kind, policy, replicas or 1)
        try:
            await js.add_stream(config)
            log.info("created stream %s (%d replicas)", name, config.num_replicas)
        except BadRequestError as exc:  # created by a racing process meanwhile
            if "already in use" not in str(exc):
                raise
        return
    kept = replicas or info.config.num_replicas or 1
    await js.update_stream(stream_config(subjects, kind, policy, kept))


async def delete_streams(js: JetStreamContext, subjects: Subjects) -> None:
    for kind in ChannelKind:
        with contextlib.suppress(NotFoundError):
            await js.delete_stream(subjects.stream(kind))
