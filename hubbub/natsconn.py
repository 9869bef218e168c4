"""Connecting to NATS the same way everywhere: named, reconnecting, logging its troubles."""

from __future__ import annotations

import logging

from nats.aio.client import Client as NATS

log = logging.getLogger(__name__)


async def connect_nats(url: str, name: str, *, connect_timeout: int = 5) -> NATS:
    async def on_error(exc: Exception) -> None:
        log.warning("nats error: %s", exc)

    async def on_disconnected() -> None:
        if not (nc.is_closed or nc.is_draining):
            log.warning("nats disconnected")

    async def on_reconnected() -> None:
        log.info("nats reconnected")

    nc = NATS()
    await nc.connect(
        url,
        name=name,
        connect_timeout=connect_timeout,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,  # type: ignore[arg-type]  # seconds; floats work
        allow_reconnect=True,
        # The first connect fails fast with a clear error instead of looping forever.
        error_cb=on_error,
        disconnected_cb=on_disconnected,
        reconnected_cb=on_reconnected,
        pending_size=64 * 1024 * 1024,
    )
    return nc
