"""Connecting to NATS the same way everywhere: named, reconnecting, logging its troubles."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from nats import errors as nats_errors
from nats.aio.client import Client as NATS

from hubbub.nats_reader import read_directly
from hubbub.natsauth import ANONYMOUS, NatsAuth

log = logging.getLogger(__name__)

# nats-py's errors that are the connection going away (``UnexpectedEOF`` is a
# ``StaleConnectionError``). Its other errors are warnings even where they subclass
# ``OSError`` (its ``TimeoutError``s: a flush the server did not answer in time).
_CONNECTION_LOST = (nats_errors.StaleConnectionError, nats_errors.ConnectionClosedError)
REPEAT_EVERY_S = 60.0  # the same error again within this is counted, not logged


def connection_lost(exc: Exception) -> bool:
    """Whether ``exc`` is the connection going away, or a reconnect attempt failing
    (refused, reset, timed out) while it is away."""
    if isinstance(exc, nats_errors.Error):
        return isinstance(exc, _CONNECTION_LOST)
    return isinstance(exc, (OSError, asyncio.TimeoutError))


class ErrorLog:
    """What nats-py reports through its error callback, logged so that an outage or a
    flood is a line, not a line per reconnect attempt or per dropped message.

    A lost connection and each failed reconnect attempt are the outage that "nats
    disconnected" reports once (naming the first as why): debug only. Any other error
    is a warning; the same one again (a slow consumer: on the same subscription) within
    ``REPEAT_EVERY_S`` is only counted, and its next line says how many were left out.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.lost: Exception | None = None  # the connection error since the last "why"
        self._last: dict[tuple[str, str], tuple[float, int]] = {}  # key → (logged at, left out)

    def __call__(self, exc: Exception) -> None:
        if connection_lost(exc):
            log.debug("nats connection error: %r", exc)
            if self.lost is None:
                self.lost = exc
            return
        if isinstance(exc, nats_errors.SlowConsumerError):
            # Per subscription: a wildcard one (a reply inbox) drops a subject per message.
            subject = exc.sub.subject if exc.sub is not None else exc.subject
            key = ("slow consumer", subject)
            text = f"slow consumer: dropping messages on {subject}"
        else:
            key = (type(exc).__name__, str(exc))
            text = str(exc)
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last[0] < REPEAT_EVERY_S:
            self._last[key] = (last[0], last[1] + 1)
            return
        if len(self._last) >= 1024:
            self._last.clear()
        self._last[key] = (now, 0)
        if last is not None and last[1]:
            text += f" ({last[1]} more like it since the last line)"
        log.warning("nats error: %s", text)

    def why_lost(self) -> str:
        """What ended the connection (the first connection error since it was last
        connected), for the one line that says it went."""
        lost, self.lost = self.lost, None
        return "no error given" if lost is None else f"{type(lost).__name__}: {lost}"

    def connected(self) -> None:
        """The connection is up (again): what failed before it is not why it goes next."""
        self.lost = None


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

    errors = ErrorLog()

    async def on_error(exc: Exception) -> None:
        errors(exc)

    async def on_disconnected() -> None:
        if not (nc.is_closed or nc.is_draining):
            log.warning("nats disconnected: %s", errors.why_lost())

    async def reconnected() -> None:
        errors.connected()
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
    errors.connected()
    # Read with hubbub/nats_reader.py's parser; nats-py's own stays when its checks fail.
    if not plain_reader and not read_directly(nc):
        log.warning("nats-py is not as hubbub.nats_reader expects: reading with its parser")
    return nc
