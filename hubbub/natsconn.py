"""Connecting to NATS the same way everywhere: named, reconnecting, logging its troubles."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from nats.aio.client import Client as NATS

from hubbub.nats_reader import read_directly
from hubbub.natsauth import ANONYMOUS, NatsAuth

log = logging.getLogger(__name__)


def nats_servers(url: str) -> list[str]:
    """``NATS_URL`` as a server list: one URL, or a cluster's as a comma-separated list
    (``nats://a:4222,nats://b:4222``)."""
    return [part.strip() for part in url.split(",") if part.strip()]


async def connect_nats(
    url: str,
    name: str,
    *,
    connect_timeout: int = 5,
    on_reconnected: Callable[[], Awaitable[None]] | None = None,
    auth: NatsAuth = ANONYMOUS,
    inbox_prefix: str | None = None,
    plain_reader: bool = False,
) -> NATS:
    """Connect to ``url``: one server, or a cluster's as a comma-separated list (the
    client picks one at random and moves to another when it loses it). ``on_reconnected``
    runs after each reconnect (to re-sync state that messages missed while disconnected
    would have changed). ``auth``: the credentials (``nats_auth(settings)``);
    ``inbox_prefix``: where replies to this client's requests come (``HUB_INBOX_PREFIX`` for
    hubs, which only the hub user may subscribe to). The client reads with
    ``hubbub.nats_reader``'s parser unless ``plain_reader`` (nats-py's own: a baseline's)."""

    async def on_error(exc: Exception) -> None:
        log.warning("nats error: %s", exc)

    async def on_disconnected() -> None:
        if not (nc.is_closed or nc.is_draining):
            log.warning("nats disconnected")

    async def reconnected() -> None:
        log.info("nats reconnected")
        if on_reconnected is not None:
            try:
                await on_reconnected()
            except Exception:
                log.exception("re-syncing after a NATS reconnect failed")

    options: dict[str, Any] = auth.options()
    if inbox_prefix:
        options["inbox_prefix"] = inbox_prefix
    nc = NATS()
    await nc.connect(
        nats_servers(url),
        name=name,
        connect_timeout=connect_timeout,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,  # type: ignore[arg-type]  # seconds; floats work
        allow_reconnect=True,
        # The first connect fails fast with a clear error instead of looping forever.
        error_cb=on_error,
        disconnected_cb=on_disconnected,
        reconnected_cb=reconnected,
        pending_size=64 * 1024 * 1024,
        **options,
    )
    # Read with hubbub/nats_reader.py's parser; nats-py's own stays when its checks fail.
    if not plain_reader and not read_directly(nc):
        log.warning("nats-py is not as hubbub.nats_reader expects: reading with its parser")
    return nc
