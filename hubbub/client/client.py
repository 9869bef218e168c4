"""``HubbubClient``: one WebSocket to a hub, kept alive.

* ``connect()`` opens the socket with a token from ``token_provider`` (called again
  after a 4001 close or an ``expiring`` push): in the upgrade request
  (``Authorization: Bearer``, one round trip) — or, with ``connect_in_upgrade=False``
  (a server that knows only the frame, such as a hub older than 2026-12-05: upgrade the
  hubs first), as a ``connect`` frame after it.
* ``connect()`` raises what kept the hub from accepting the connection (a refused
  ``connect``, a refused upgrade such as a 404, or ``TimeoutError`` naming the last
  error), and the client is then closed: nothing goes on connecting in the background.
* ``rpc()`` returns the result or raises ``RemoteError`` (with the stable ``code``).
  Every RPC carries an idempotency key (``idempotency_key=``, or a new one); one still
  unanswered when the socket drops is sent again, with the same key, after the
  reconnect — the server applies it once. The key is on the ``RemoteError`` and on the
  ``RpcTimeout`` (a ``TimeoutError``) an RPC raises: retry with it.
* ``subscribe()`` returns a ``Subscription`` whose ``queue`` yields publications in
  offset order, each once. After a reconnect it resubscribes with ``since`` (pacing
  itself when the hub answers ``rate_limited``); when the hub cannot recover
  (``recovered: false``), ``on_reset`` is called so the application reloads its state.
  Under a new epoch (the channel's history was reset) offsets start over.
* Reconnects use exponential backoff with full jitter, from the first again after a
  session that stayed live for ``stable_after`` seconds (10 by default: a hub that
  accepts ``connect`` and closes at once is not tried again at once, forever); a 1001 or
  4001 close is tried again at once when the backoff is at its first step, then backs
  off like any other; closes 1000 and 4003 are final, and so is a ``connect``
  refused because the account is deactivated, or refused more than 3 times in a row
  (``rate_limited``, too many sockets, and ``unavailable``, a hub shutting down, are not
  refusals: they are retried).
* ``pushes`` keeps the last ``PUSHES_KEPT`` pushes other than publications, for
  inspection; older ones unread are dropped, counted in ``pushes_dropped``.
* Should the connection loop itself fail (a bug), the client is closed (``state``
  ``closed``) and every waiting call, and the next, raises ``ClientClosed`` naming it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import aiohttp
import orjson

from hubbub.contracts.protocol import RECONNECT, SUBPROTOCOL, CloseCode

log = logging.getLogger("hubbub.client")

TokenProvider = Callable[[], Awaitable[str]]


class ConnectionState(StrEnum):
    IDLE = "idle"
    CONNECTING = "connecting"
    LIVE = "live"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


PUSHES_KEPT = 1000  # pushes ``HubbubClient.pushes`` holds unread; older ones are dropped
MAX_REFUSALS = 3  # connects refused in a row (no live session between) before giving up


class RemoteError(Exception):
    """An error frame from the hub. ``idempotency_key``: an RPC's, to retry it with."""

    def __init__(self, error: dict[str, Any]) -> None:
        self.code: str = str(error.get("code", "internal"))
        self.status: int = int(error.get("status", 500))
        self.details: dict[str, Any] = error.get("details") or {}
        self.idempotency_key: str | None = None
        super().__init__(f"{self.code}: {error.get('message', '')}")


class RpcTimeout(TimeoutError):
    """An RPC unanswered in its time: it may still be applied. Send it again with
    ``idempotency_key`` and it is applied once."""

    def __init__(self, message: str, idempotency_key: str) -> None:
        super().__init__(message)
        self.idempotency_key = idempotency_key


# Errors worth the same request again later, after a reconnect.
TRANSIENT = frozenset({"unavailable", "timeout", "rate_limited", "internal", "bad_gateway"})


class ClientClosed(Exception):
    """The client was closed (by you, or by the hub for good)."""


@dataclass(frozen=True, slots=True)
class Publication:
    channel: str
    offset: int
    data: Any


@dataclass
class Subscription:
    channel: str
    queue: asyncio.Queue[Publication] = field(default_factory=asyncio.Queue)
    offset: int = 0
    epoch: str | None = None
    on_reset: Callable[[Subscription], Any] | None = None
    resets: int = 0  # times the hub could not recover (the app had to reload)
    gaps: int = 0  # publications the hub dropped for us (slow consumer)
    active: bool = True
    # The hub answered its first subscribe: from then on a reconnect resubscribes it.
    # Until then the call that subscribes it does (on the next socket, if need be).
    established: bool = field(default=False, repr=False)

    def _accept(self, offset: int, data: Any) -> None:
        if offset <= self.offset:
            return  # de-duplication by offset
        self.offset = offset
        self.queue.put_nowait(Publication(self.channel, offset, data))


@dataclass
class _Pending:
    frame: dict[str, Any]
    future: asyncio.Future[Any]
    resend: bool  # an RPC: send again after a reconnect
    # Applied by the reader the moment the reply arrives, before any later frame — so
    # a subscribe reply's publications come before the live ones that follow it.
    on_result: Callable[[Any], None] | None = None


class HubbubClient:
    def __init__(
        self,
        url: str | Sequence[str],
        token_provider: TokenProvider | str,
        *,
        session: aiohttp.ClientSession | None = None,
        rpc_timeout: float = 10.0,
        backoff_min: float = 0.05,
        backoff_max: float = 5.0,
        stable_after: float = 10.0,
        headers: dict[str, str] | None = None,
        connect_in_upgrade: bool = True,
    ) -> None:
        # Several hubs: each reconnect tries the next one (a hub that is gone, or draining
        # with 1001, sends its clients on to the others).
        self.urls = [url] if isinstance(url, str) else list(url)
        if not self.urls:
            raise ValueError("give at least one hub URL")
        self._next_url = 0
        if isinstance(token_provider, str):
            token = token_provider

            async def fixed() -> str:
                return token

            self.token_provider: TokenProvider = fixed
        else:
            self.token_provider = token_provider
        self._session = session
        self._own_session = session is None
        self.rpc_timeout = rpc_timeout
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        # A session live this long (seconds) starts the backoff from its first step again.
        self.stable_after = stable_after
        self.headers = headers or {}
        self.connect_in_upgrade = connect_in_upgrade
        self.url = self.urls[0]  # the hub of the current (or last) connection
        self.state = ConnectionState.IDLE
        self.client_id: str | None = None
        self.ping_interval = 25.0
        self.subscriptions: dict[str, Subscription] = {}
        # The last PUSHES_KEPT pushes (not publications), for inspection.
        self.pushes: asyncio.Queue[dict[str, Any]] = asyncio.Queue(PUSHES_KEPT)
        self.pushes_dropped = 0  # pushes dropped unread from a full ``pushes``
        self.last_error: BaseException | None = None  # why the last connect attempt failed
        self.closes: list[tuple[int, str]] = []  # close codes seen, for inspection
        self.reconnects = 0
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._runner: asyncio.Task[None] | None = None
        self._live = asyncio.Event()
        self._closing = False
        self._fatal: BaseException | None = None
        self._went_live = False  # the current session went live
        self._live_since = 0.0  # when it did (time.monotonic())
        self._ever_live = False
        self._last_frame = time.monotonic()
        self._background: set[asyncio.Future[None]] = set()

    # --- lifetime -----------------------------------------------------------------------

    async def connect(self, timeout: float = 30.0) -> None:
        """Connect (and keep reconnecting until ``close()``); returns once live. When
        the hub does not accept the connection (refused, or not in ``timeout``), raises
        why — and the client is closed."""
        if self._runner is None:
            if self._session is None:
                self._session = aiohttp.ClientSession()
            self._runner = asyncio.create_task(self._run(), name="hubbub-client")
        try:
            await self.wait_live(timeout)
        except BaseException:
            with contextlib.suppress(Exception):
                await self.close()
            raise

    async def wait_live(self, timeout: float = 30.0) -> None:
        if self._live.is_set():
            return
        waiter = asyncio.ensure_future(self._live.wait())
        done, _ = await asyncio.wait(
            {waiter, self._runner} if self._runner else {waiter},
            timeout=timeout,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if waiter not in done:
            waiter.cancel()
            if self._fatal is not None:
                raise self._fatal
            if self._runner is not None and self._runner.done():
                raise ClientClosed("the client is closed")
            last = self.last_error
            raise TimeoutError(
                "the hub did not accept the connection in time"
                + ("" if last is None else f" (last error: {last!r})")
            ) from last

    async def close(self) -> None:
        self._closing = True
        self.state = ConnectionState.CLOSED
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._runner
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(ClientClosed("the client was closed"))
        self._pending.clear()
        if self._own_session and self._session is not None:
            await self._session.close()

    async def drop(self) -> None:
        """Cut the socket without a close handshake (tests: a network failure)."""
        if self._ws is not None:
            self._ws._writer.transport.abort()

    async def __aenter__(self) -> HubbubClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- commands -----------------------------------------------------------------------

    async def rpc(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        key = idempotency_key or uuid.uuid4().hex
        frame = {"op": "rpc", "method": method, "params": params or {}, "idempotency_key": key}
        try:
            return await self._command(frame, resend=True, timeout=timeout)
        except RemoteError as exc:
            exc.idempotency_key = key
            raise
        except TimeoutError as exc:
            raise RpcTimeout(
                f"{method}: no answer in time (it may still be applied): retry with "
                f"idempotency_key={key!r}",
                key,
            ) from exc

    async def subscribe(
        self,
        channel: str,
        *,
        since: tuple[int, str] | None = None,
        on_reset: Callable[[Subscription], Any] | None = None,
    ) -> Subscription:
        sub = Subscription(channel, on_reset=on_reset)
        if since is not None:
            sub.offset, sub.epoch = since
        self.subscriptions[channel] = sub
        try:
            await self._subscribe(sub)
        except BaseException:
            if self.subscriptions.get(channel) is sub:
                del self.subscriptions[channel]
            raise
        return sub

    async def unsubscribe(self, channel: str) -> None:
        sub = self.subscriptions.pop(channel, None)
        if sub is not None:
            sub.active = False
            await self._command({"op": "unsubscribe", "channel": channel})

    async def publish(self, channel: str, data: dict[str, Any]) -> int:
        result = await self._command({"op": "publish", "channel": channel, "data": data})
        return int(result["offset"])

    async def presence(self, channel: str) -> list[dict[str, Any]]:
        result = await self._command({"op": "presence", "channel": channel})
        return list(result["members"])

    async def history(
        self, channel: str, *, since: tuple[int, str] | None = None, limit: int = 100
    ) -> dict[str, Any]:
        frame: dict[str, Any] = {"op": "history", "channel": channel, "limit": limit}
        if since is not None:
            frame["since"] = {"offset": since[0], "epoch": since[1]}
        result: dict[str, Any] = await self._command(frame)
        return result

    async def send_raw(self, data: str | bytes) -> None:
        """Send a frame as given (tests of bad input)."""
        assert self._ws is not None
        if isinstance(data, bytes):
            await self._ws.send_bytes(data)
        else:
            await self._ws.send_str(data)

    async def _subscribe(self, sub: Subscription, *, restoring: bool = False) -> None:
        frame: dict[str, Any] = {"op": "subscribe", "channel": sub.channel}
        resuming = sub.epoch is not None
        if resuming:
            frame["since"] = {"offset": sub.offset, "epoch": sub.epoch}

        def apply(result: dict[str, Any]) -> None:
            if resuming and not result["recovered"]:
                sub.resets += 1
            epoch = str(result["epoch"])
            if sub.epoch is not None and sub.epoch != epoch:
                # Offsets compare only within one epoch: the new history's start over
                # (below the old ones), and none of them was seen yet.
                sub.offset = 0
            sub.epoch = epoch
            sub.established = True
            for publication in result["publications"]:
                sub._accept(int(publication["offset"]), publication["data"])
            # Live publications continue after this position (never move backwards).
            sub.offset = max(sub.offset, int(result["offset"]))

        result = await self._command(frame, on_result=apply, restoring=restoring)
        if resuming and not result["recovered"] and sub.on_reset is not None:
            outcome = sub.on_reset(sub)
            if asyncio.iscoroutine(outcome):
                await outcome

    async def _command(
        self,
        frame: dict[str, Any],
        *,
        resend: bool = False,
        timeout: float | None = None,
        on_result: Callable[[Any], None] | None = None,
        restoring: bool = False,
    ) -> Any:
        """Send ``frame`` and wait for its reply. A command sent on a socket fails with
        ``ConnectionError`` the moment that socket closes (an RPC waits to be sent again
        instead); one sent while restoring a connection that is already gone fails at
        once — waiting for the next connection would wait for itself."""
        if self.state is ConnectionState.CLOSED:
            if self._fatal is not None:
                raise ClientClosed(f"the client is closed: {self._fatal}") from self._fatal
            raise ClientClosed("the client is closed")
        if restoring and self.state is not ConnectionState.LIVE:
            raise ConnectionError("the connection was lost while restoring")
        command_id = next(self._ids)
        frame = {"id": command_id, **frame}
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[command_id] = _Pending(frame, future, resend, on_result)
        try:
            if self._ws is not None and self.state is ConnectionState.LIVE:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await self._ws.send_str(orjson.dumps(frame).decode())
            elif not resend:
                await self.wait_live()
                assert self._ws is not None
                await self._ws.send_str(orjson.dumps(frame).decode())
            async with asyncio.timeout(timeout or self.rpc_timeout):
                return await future
        finally:
            self._pending.pop(command_id, None)

    # --- the connection loop ------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._keep_connected()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug: closed and said, not stuck in 'reconnecting'
            log.error("the hubbub client's connection loop failed", exc_info=True)
            fatal = ClientClosed(f"the connection loop failed: {exc!r}")
            fatal.__cause__ = exc
            self._fatal = fatal
        finally:
            self.state = ConnectionState.CLOSED
            self._live.clear()
            for pending in self._pending.values():
                if not pending.future.done():
                    pending.future.set_exception(self._fatal or ClientClosed("closed"))

    async def _keep_connected(self) -> None:
        attempt = 0  # sessions since the last stable one: the backoff's exponent
        refusals = 0  # connects refused in a row (no live session between)
        while not self._closing:
            self.state = (
                ConnectionState.CONNECTING
                if attempt == 0 and self.reconnects == 0
                else ConnectionState.RECONNECTING
            )
            code, reason = 0, ""
            at_once = False
            self._went_live = False
            try:
                code, reason = await self._session_once()
                at_once = code in (CloseCode.GOING_AWAY, CloseCode.UNAUTHORIZED)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                log.debug("connect failed: %s", exc)
                self.last_error = exc
                if _refused_upgrade(exc) and not self._ever_live:
                    self._fatal = exc  # a wrong URL or a refused origin: not worth retrying
                    break
            except RemoteError as exc:  # connect refused
                self.last_error = exc
                if exc.code in _CONNECT_FOR_NOW:  # the socket cap, a hub shutting down
                    log.debug("connect refused for now: %s; retrying", exc)
                elif exc.details.get("reason") == "deactivated":
                    self._fatal = exc
                    break
                else:
                    refusals += 1
                    if refusals > MAX_REFUSALS:
                        self._fatal = exc
                        break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # e.g. the socket dropped while resubscribing: go again
                log.warning("connection attempt failed", exc_info=True)
                self.last_error = exc
            if self._went_live:
                refusals = 0
                if time.monotonic() - self._live_since >= self.stable_after:
                    attempt = 0
            # 1001 and 4001 (another hub, a new token) at once, unless that was tried
            # already since the last stable session.
            pause = self._backoff(0 if at_once and attempt == 0 else attempt + 1)
            attempt += 1
            self._live.clear()
            self._next_url += 1  # the next attempt goes to the next hub
            if self._stopping():
                break
            if code and not RECONNECT.get(_as_close(code), True):
                self._fatal = ClientClosed(
                    f"the hub closed the connection for good: {code} {reason}"
                )
                break
            self.reconnects += 1
            await asyncio.sleep(pause)

    def _backoff(self, attempt: int) -> float:
        """Full jitter up to ``backoff_min`` doubled per attempt, at most ``backoff_max``."""
        return random.uniform(0, min(self.backoff_max, self.backoff_min * 2 ** min(attempt, 32)))

    def _stopping(self) -> bool:
        return self._closing

    def _pick_url(self) -> str:
        url = self.urls[self._next_url % len(self.urls)]
        self.url = url
        return url

    async def _session_once(self) -> tuple[int, str]:
        assert self._session is not None
        token = await self.token_provider()
        headers = self.headers
        if self.connect_in_upgrade:
            headers = {**headers, "Authorization": f"Bearer {token}"}
        try:
            ws = await self._session.ws_connect(
                self._pick_url(),
                protocols=(SUBPROTOCOL,),
                headers=headers,
                heartbeat=None,
                autoping=True,
                max_msg_size=0,
            )
        except aiohttp.WSServerHandshakeError as exc:
            refusal = _refused_connect(exc) if self.connect_in_upgrade else None
            if refusal is not None:
                raise refusal from exc
            raise
        self._ws = ws
        reader: asyncio.Task[None] | None = None
        watchdog: asyncio.Task[None] | None = None
        try:
            if not self.connect_in_upgrade:
                connect = {"id": 0, "op": "connect", "token": token}
                await ws.send_str(orjson.dumps(connect).decode())
            first = await ws.receive(timeout=10)
            if first.type is not aiohttp.WSMsgType.TEXT:
                return ws.close_code or 1006, "closed during connect"
            reply = orjson.loads(first.data)
            if reply.get("push") == "disconnect":  # closed before it was live (e.g. 1001)
                code, reason = int(reply["code"]), str(reply.get("reason", ""))
                self.closes.append((code, reason))
                # What connect() names if it times out: e.g. "send connect within 5s", a
                # hub older than the connect in the upgrade (connect_in_upgrade=False).
                self.last_error = ConnectionError(f"closed before it was live: {code} {reason}")
                return code, reason
            if "error" in reply:
                raise RemoteError(reply["error"])
            if self.connect_in_upgrade and reply.get("push") != "connected":
                # E.g. a hub older than the connect in the upgrade (it waits for the frame).
                raise ConnectionError(f"the hub's first frame is not `connected`: {reply!r:.120}")
            result = reply if self.connect_in_upgrade else reply["result"]
            self.client_id = result["client"]
            self.ping_interval = float(result["ping_interval"])
            self.state = ConnectionState.LIVE
            self._last_frame = time.monotonic()
            reader = asyncio.create_task(self._read(ws))
            try:
                await self._restore()
            except ConnectionError:
                if not reader.done():
                    raise  # a transient refusal: reconnect with backoff
                # The socket closed while restoring: its close code decides what's next.
                code = ws.close_code or 1006
                self.closes.append((code, ""))
                return code, ""
            self._went_live = self._ever_live = True
            self._live_since = time.monotonic()
            self._live.set()
            watchdog = asyncio.create_task(self._watch(ws))
            await reader
            code = ws.close_code or 1006
            self.closes.append((code, ""))
            return code, ""
        finally:
            for task in (reader, watchdog):
                if task is not None and not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
            self.state = (
                ConnectionState.RECONNECTING if not self._closing else ConnectionState.CLOSED
            )
            for pending in self._pending.values():  # RPCs wait to be sent again; others fail
                if not pending.resend and not pending.future.done():
                    pending.future.set_exception(ConnectionError("the connection was lost"))
            if not ws.closed:
                await ws.close()

    async def _restore(self) -> None:
        """After (re)connecting: resubscribe with since, then re-send unanswered RPCs.
        A subscription not yet answered once is left to the call that makes it.

        Over the hub's command rate (more channels than its burst), a resubscribe is
        answered ``rate_limited``: it waits as told and goes on, on this socket (a
        reconnect would start over with the same burst), the ones after it spaced by the
        longest wait told so far — one refusal after another would get the socket closed
        (4008)."""
        pace = 0.0
        for sub in list(self.subscriptions.values()):
            while sub.active and sub.established and self.subscriptions.get(sub.channel) is sub:
                if pace:
                    await asyncio.sleep(pace)
                try:
                    await self._subscribe(sub, restoring=True)
                    break
                except RemoteError as exc:
                    if exc.code == "rate_limited":
                        pace = max(pace, _retry_after(exc))
                        continue  # after the wait
                    if exc.code in TRANSIENT:
                        # Not our subscription's fault: reconnect (with backoff) and try
                        # again with the same since — nothing is lost meanwhile.
                        log.info("resubscribe to %s: %s; retrying", sub.channel, exc)
                        raise ConnectionError(f"resubscribe failed: {exc}") from exc
                    log.warning("resubscribe to %s refused: %s", sub.channel, exc)
                    sub.active = False
                    self.subscriptions.pop(sub.channel, None)
                    self._keep_push(
                        {
                            "push": "unsubscribed",
                            "channel": sub.channel,
                            "code": exc.status,
                            "reason": str(exc),
                        }
                    )
                    break
        assert self._ws is not None
        for pending in list(self._pending.values()):
            if pending.resend and not pending.future.done():
                await self._ws.send_str(orjson.dumps(pending.frame).decode())

    def _keep_push(self, frame: dict[str, Any]) -> None:
        """Into ``pushes``, dropping the oldest unread one when it is full."""
        if self.pushes.full():
            self.pushes.get_nowait()
            self.pushes_dropped += 1
        self.pushes.put_nowait(frame)

    async def _watch(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Two ping intervals of silence: the connection is dead."""
        while True:
            await asyncio.sleep(self.ping_interval / 2)
            if time.monotonic() - self._last_frame > 2 * self.ping_interval + 1:
                log.info("no frame for two ping intervals: reconnecting")
                await ws.close(code=CloseCode.GOING_AWAY)
                return

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            async for msg in ws:
                self._last_frame = time.monotonic()
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    continue
                value = orjson.loads(msg.data)
                for frame in value if isinstance(value, list) else [value]:
                    await self._dispatch(ws, frame)
        finally:
            if self._ws is ws:
                self._lost()

    def _lost(self) -> None:
        """The socket is gone: no reply will come on it. Commands waiting for one fail
        now (RPCs wait to be sent again after the reconnect) — not at their timeout."""
        if not self._closing:
            self.state = ConnectionState.RECONNECTING
        self._live.clear()
        for pending in self._pending.values():
            if not pending.resend and not pending.future.done():
                pending.future.set_exception(ConnectionError("the connection was lost"))

    async def _dispatch(self, ws: aiohttp.ClientWebSocketResponse, frame: dict[str, Any]) -> None:
        kind = frame.get("push")
        if kind is None:
            pending = self._pending.get(frame.get("id"))  # type: ignore[arg-type]
            if pending is not None and not pending.future.done():
                if "error" in frame:
                    pending.future.set_exception(RemoteError(frame["error"]))
                    return
                try:
                    if pending.on_result is not None:
                        pending.on_result(frame.get("result"))
                except Exception as exc:
                    pending.future.set_exception(exc)
                else:
                    pending.future.set_result(frame.get("result"))
            return
        if kind == "pub":
            sub = self.subscriptions.get(frame["channel"])
            if sub is not None and sub.active:
                sub._accept(int(frame["offset"]), frame["data"])
            return
        if kind == "ping":
            await ws.send_str('{"op":"pong"}')
            return
        if kind == "expiring":
            self._keep_push(frame)
            self._background.add(task := asyncio.ensure_future(self._refresh()))
            task.add_done_callback(self._background.discard)
            return
        if kind == "gap":
            sub = self.subscriptions.get(frame["channel"])
            if sub is not None:
                sub.gaps += int(frame.get("dropped", 0))
        if kind == "unsubscribed":
            sub = self.subscriptions.pop(frame["channel"], None)
            if sub is not None:
                sub.active = False
        if kind == "disconnect":
            self.closes.append((int(frame.get("code", 0)), str(frame.get("reason", ""))))
        self._keep_push(frame)

    async def _refresh(self) -> None:
        try:
            token = await self.token_provider()
            await self._command({"op": "refresh", "token": token})
        except Exception as exc:
            log.warning("token refresh failed: %s", exc)


def _as_close(code: int) -> CloseCode:
    try:
        return CloseCode(code)
    except ValueError:
        return CloseCode.INTERNAL


def _retry_after(error: RemoteError) -> float:
    """How long a ``rate_limited`` error says to wait (seconds; 1 when it does not say),
    at least 10 ms (the hub rounds to the millisecond: 0 would be refused again)."""
    try:
        return max(0.01, min(60.0, float(error.details.get("retry_after", 1.0))))
    except (TypeError, ValueError):
        return 1.0


# Connect refusals that are no refusal of the client: tried again without end.
_CONNECT_FOR_NOW = frozenset({"rate_limited", "unavailable"})

# The answers to a connect in the upgrade request that are the hub's refusal of the
# connect, not of the upgrade: as the ``connect`` frame's error would name them.
_CONNECT_REFUSALS = {401: "unauthorized", 429: "rate_limited", 503: "unavailable"}


def _refused_connect(exc: aiohttp.WSServerHandshakeError) -> RemoteError | None:
    """The ``RemoteError`` a refused upgrade stands for when it refused the connect it
    carried (a client library sees the status and headers, not the problem's body):
    ``WWW-Authenticate``'s ``error_description`` is the refusal's reason, ``Retry-After``
    its ``retry_after``. None for any other refusal."""
    code = _CONNECT_REFUSALS.get(exc.status)
    if code is None:
        return None
    details: dict[str, Any] = {}
    headers: Mapping[str, str] = exc.headers or {}
    reason = _auth_param(headers.get("WWW-Authenticate", ""), "error_description")
    if reason is not None:
        details["reason"] = reason
    retry = headers.get("Retry-After")
    if retry is not None and retry.isdigit():
        details["retry_after"] = int(retry)
    return RemoteError(
        {"code": code, "status": exc.status, "message": exc.message, "details": details}
    )


def _auth_param(header: str, name: str) -> str | None:
    """A quoted parameter of a ``WWW-Authenticate`` challenge (the hub's have no commas
    or quotes inside their values)."""
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key.split()[-1:] == [name]:
            return value.strip().strip('"')
    return None


def _refused_upgrade(exc: BaseException) -> bool:
    """Whether the hub refused the WebSocket upgrade in a way trying again will not
    change (a wrong path, a missing subprotocol, a refused origin): a 4xx but 408/429."""
    return isinstance(exc, aiohttp.WSServerHandshakeError) and (
        400 <= exc.status < 500 and exc.status not in (408, 425, 429)
    )
