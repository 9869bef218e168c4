"""Connecting to NATS the same way everywhere: named, reconnecting, logging its troubles,
and ending the process when the connection is closed for good without being asked to.

The first connect is bounded: a server that refuses, does not answer, or refuses the
client's credentials is tried again for ``first_connect_s``, then ``NatsUnavailable``
names the last error. Once connected, a lost connection is reconnected for as long as it
takes — and a link whose server went silent (half-open: a peer or a NAT gone without a
word) is taken for lost within seconds (``PING_INTERVAL_S``), not nats-py's minutes."""

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
# The exit code of a process whose NATS connection the server closed for good (sysexits'
# EX_UNAVAILABLE): its supervisor starts it again.
NATS_CLOSED_EXIT = 69
_HEADER_LINE = len(b"NATS/1.0\r\n")
# How long a process's first connect keeps trying before it gives up (``NatsUnavailable``):
# long enough for a NATS that starts beside it; then its supervisor starts it again.
FIRST_CONNECT_S = 30.0
# The client pings its server this often; a ping finding ``MAX_OUTSTANDING_PINGS`` still
# unanswered takes the link for lost ("nats disconnected", then reconnects): a server
# that went silent is noticed within (MAX_OUTSTANDING_PINGS + 1) * PING_INTERVAL_S, 20 s,
# where nats-py's default (every 120 s) takes six minutes — while a hub's presence still
# counts its snapshots as told in step and its re-checks wait for a reconnect. An event
# loop held up longer than that is not silence by itself: a ping goes out only when the
# loop runs, and its answer is read as soon as the loop runs again. A reader that falls
# behind is, though: a PONG is read in order, after every message the server sent before
# it, so a process that reads its link more than MAX_OUTSTANDING_PINGS * PING_INTERVAL_S
# (15 s) behind — a hub saturated by its inbound stream — cuts the link itself, and again
# after each reconnect while the overload lasts. Three, not two (10 s): a busy hub gets
# 15 s of backlog before it drops its own link, at the cost of noticing a silent one 5 s
# later.
PING_INTERVAL_S = 5.0
MAX_OUTSTANDING_PINGS = 3


class NatsUnavailable(Exception):
    """The first connect gave up: no server of the list let this client in within
    ``seconds`` (refused, not answering, or refusing its credentials). ``last``: the last
    refusal of a server that answered (its credentials), else the last error; None if
    none came in time."""

    def __init__(self, seconds: float, last: BaseException | None) -> None:
        self.seconds = seconds
        self.last = last
        super().__init__(f"no connection within {seconds:g} s ({describe_error(last)})")


def describe_error(exc: BaseException | None) -> str:
    """An error as one line of a log or a message: nats-py's own say what they are
    (``nats: 'Authorization Violation'``), the others are named by their type."""
    if exc is None:
        return "no answer"
    if isinstance(exc, nats_errors.Error):
        return str(exc)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def message_size(payload: bytes, headers: dict[str, str] | None = None) -> int:
    """The bytes the NATS server counts against its ``max_payload`` for a message:
    its payload and its headers block. nats-py checks only the payload before sending;
    a message whose headers take it over the limit makes the server answer
    ``-ERR 'Maximum Payload Violation'`` and close the connection — for good, as nats-py
    does not reconnect after a server's ``-ERR``. An upper bound (nats-py strips
    whitespace around keys and values)."""
    if headers is None:
        return len(payload)
    size = len(payload) + _HEADER_LINE + 2  # "NATS/1.0\r\n", then "\r\n" after the last
    for key, value in headers.items():
        size += len(key.encode()) + len(value.encode()) + 4  # "key: value\r\n"
    return size


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

    def lost_because(self, exc: Exception) -> None:
        """nats-py took the link for lost because of ``exc`` (``Connection.on_lost``)."""
        if self.lost is None:
            self.lost = exc

    def connected(self) -> None:
        """The connection is up (again): what failed before it is not why it goes next."""
        self.lost = None


class Connection(NATS):
    """nats-py's client, knowing whether its close was asked for (``close``, ``drain``,
    ``async with``) — unlike one the server forced: after an ``-ERR`` from the server
    (a maximum payload or an authorization violation) nats-py closes the connection and
    never reconnects."""

    closing_on_purpose = False
    # Told why nats-py takes the link for lost: it does not always tell ``error_cb`` (a
    # link its pings found stale goes straight to reconnecting).
    on_lost: Callable[[Exception], None] | None = None

    async def _process_op_err(self, e: Exception) -> None:
        if self.on_lost is not None and self.is_connected:
            self.on_lost(e)
        await super()._process_op_err(e)

    async def close(self) -> None:
        self.closing_on_purpose = True
        await super().close()

    async def drain(self) -> None:
        self.closing_on_purpose = True
        await super().drain()

    async def __aexit__(self, *exc_info: Any) -> None:
        self.closing_on_purpose = True
        await super().__aexit__(*exc_info)


def exit_process() -> None:
    """What a process does by default once its NATS connection is closed for good: it
    cannot serve without it, and nothing in it would connect again, so it ends with
    ``NATS_CLOSED_EXIT`` for its supervisor (``hubbub up``, compose, Kubernetes) to start
    it again. ``SystemExit`` raised from the event loop ends ``asyncio.run`` and the
    hub's ``run_hub`` after their cleanup (a hub closes its sockets with 1001, a worker
    drains)."""
    asyncio.get_running_loop().call_soon(_raise_exit)


def _raise_exit() -> None:
    raise SystemExit(NATS_CLOSED_EXIT)


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
    on_closed: Callable[[], object] = exit_process,
    first_connect_s: float | None = None,
    warn_while_connecting: bool = True,
    ping_interval_s: float = PING_INTERVAL_S,
    max_outstanding_pings: int = MAX_OUTSTANDING_PINGS,
) -> NATS:
    """Connect to ``url``: one server, or a cluster's as a comma-separated list (the
    client picks one at random and moves to another when it loses it). ``on_reconnected``
    runs after each reconnect (to re-sync state that messages missed while disconnected
    would have changed). ``auth``: the credentials (``nats_auth(settings)``);
    ``inbox_prefix``: where replies to this client's requests come (``HUB_INBOX_PREFIX`` for
    hubs, which only the hub user may subscribe to). The client reads with
    ``hubbub.nats_reader``'s parser unless ``plain_reader`` (nats-py's own: a baseline's).
    When the server closes the connection for good (not ``close``/``drain``: those are
    asked for), one error is logged and ``on_closed`` is called: by default the process
    exits (``exit_process``). A link that answers no ping (every ``ping_interval_s``) for
    ``max_outstanding_pings`` of them is taken for lost and reconnected.

    The first connect tries again for ``first_connect_s`` (default ``FIRST_CONNECT_S``),
    its first failure a warning unless ``warn_while_connecting`` is False (a command that
    says why it failed itself), then raises ``NatsUnavailable`` with the last error (the
    last refusal, if a server refused it).
    The bound is a deadline around nats-py's connect: with ``max_reconnect_attempts=-1``
    nats-py tries a first connect forever, and a bound on its attempts would stop its
    reconnects after a later outage too."""

    errors = ErrorLog()
    seconds = FIRST_CONNECT_S if first_connect_s is None else first_connect_s
    connecting = True
    last_failure: Exception | None = None
    # What a server answered when it refused (its credentials: "Authorization
    # Violation"): said rather than the socket error of its closing that follows it.
    refusal: Exception | None = None

    async def on_error(exc: Exception) -> None:
        nonlocal last_failure, refusal
        if not connecting:
            errors(exc)
            return
        if last_failure is None and warn_while_connecting:
            log.warning(
                "nats: cannot connect (%s); trying again for up to %g s",
                describe_error(exc),
                seconds,
            )
        last_failure = exc
        if not connection_lost(exc):
            refusal = exc

    async def on_disconnected() -> None:
        if not (nc.is_closed or nc.is_draining):
            log.warning("nats disconnected: %s", errors.why_lost())

    async def closed() -> None:
        if nc.closing_on_purpose:
            return
        error = nc.last_error
        why = "no error given" if error is None else f"{type(error).__name__}: {error}"
        then = "exiting, to be started again" if on_closed is exit_process else "not reconnecting"
        log.error("nats connection closed for good by the server (%s): %s", why, then)
        on_closed()

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
    nc = Connection()
    nc.on_lost = errors.lost_because
    try:
        async with asyncio.timeout(seconds) as bound:
            await nc.connect(
                nats_servers(url),
                name=name,
                connect_timeout=connect_timeout,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,  # type: ignore[arg-type]  # seconds; floats work
                ping_interval=ping_interval_s,  # type: ignore[arg-type]  # seconds; floats work
                max_outstanding_pings=max_outstanding_pings,
                allow_reconnect=True,
                error_cb=on_error,
                disconnected_cb=on_disconnected,
                reconnected_cb=reconnected,
                closed_cb=closed,
                pending_size=64 * 1024 * 1024,
                **options,
            )
    except BaseException as exc:
        # The attempt under way was cut off (the bound, or the caller's own cancel: a
        # stop while it starts): closing lets go of its socket.
        await nc.close()
        if isinstance(exc, TimeoutError) and bound.expired():
            why = refusal or last_failure
            raise NatsUnavailable(seconds, why) from why
        raise
    connecting = False
    errors.connected()
    # Read with hubbub/nats_reader.py's parser; nats-py's own stays when its checks fail.
    if not plain_reader and not read_directly(nc):
        log.warning("nats-py is not as hubbub.nats_reader expects: reading with its parser")
    return nc
