"""The scenarios: each breaks one thing under load, measures, and puts it back.

Every one runs against a ``System`` that is ready when it starts (``hubbub up`` is
started again first if an earlier fault stopped it — and the scenario says so), in a
workspace of its own, and is bounded in requests and time.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from chaos.load import Answer, Api, Load, Tally, Watchers
from chaos.report import Result
from chaos.system import HOST, LogMark, System, User
from cli.embedded.servers import EmbeddedServer
from hubbub.client import HubbubClient
from hubbub.contracts.protocol import SUBPROTOCOL
from tests.support.http import answers_200, wait_until_200
from tests.support.tcp_proxy import TcpProxy


@dataclass(frozen=True)
class Sizes:
    rate: float = 20.0  # resource creates per second (and as many reads)
    before_s: float = 3.0  # load before the fault
    outage_s: float = 10.0  # PostgreSQL and Redis stopped for this long
    nats_outage_s: float = 5.0
    after_s: float = 5.0  # load after recovery
    watchers: int = 4
    sockets: int = 1000  # the storm
    deadline_s: float = 30.0  # a request is retried for this long
    recovery_timeout_s: float = 60.0
    settle_s: float = 30.0  # for the last events to reach every watcher
    stale_after_s: float = 5.0  # stale state is checked this long after recovery


LOG_LINES_SHOWN = 15  # a scenario's log, when no longer than this, is shown line by line
LOG_LINE_CHARS = 240
TRACEBACK = "Traceback (most recent call last)"  # as Python prints one, in text or JSON logs


# The test suite's subset: the same scenarios, smaller and shorter.
CI_SIZES = Sizes(
    rate=8.0,
    before_s=1.0,
    outage_s=3.0,
    nats_outage_s=3.0,
    after_s=2.0,
    watchers=2,
    sockets=1000,
    deadline_s=25.0,
    recovery_timeout_s=45.0,
    settle_s=20.0,
)


@dataclass
class Run:
    system: System
    sizes: Sizes = field(default_factory=Sizes)


@dataclass
class Fault:
    """A fault done: when it ended, when the system counts as recovered, and what to
    check afterwards (stale state)."""

    end: float
    recovered: Callable[[aiohttp.ClientSession], Awaitable[bool]]
    check: Callable[[aiohttp.ClientSession, Result], Awaitable[None]] | None = None
    cleanup: Callable[[], Awaitable[None]] | None = None  # after the scenario, always


FaultAction = Callable[[Run, aiohttp.ClientSession, "Workspace", Api, Result], Awaitable[Fault]]


@dataclass(frozen=True)
class Workspace:
    id: str
    resource_id: str  # read by the load (and changed by the Redis scenario)

    @property
    def channel(self) -> str:
        return f"workspace:{self.id}"


async def new_workspace(run: Run, api: Api, name: str) -> Workspace:
    owner = run.system.owner
    assert owner is not None
    created = await api.call("POST", "/workspaces", owner.headers, json={"name": name}, count=False)
    if created is None:
        raise RuntimeError(f"could not create a workspace: {api.tally.failures}")
    ws_id = str(created.body["id"])
    resource = await api.call(
        "POST",
        f"/workspaces/{ws_id}/resources",
        owner.headers,
        json={"kind": "task", "title": "read-me"},
        count=False,
    )
    if resource is None:
        raise RuntimeError(f"could not create a resource: {api.tally.failures}")
    return Workspace(ws_id, str(resource.body["id"]))


async def _ready(run: Run, session: aiohttp.ClientSession) -> bool:
    return run.system.up_running() and await run.system.all_ready(session)


async def under_load(run: Run, name: str, fault: FaultAction) -> Result:
    """Load and watchers on a fresh workspace; the fault; recovery measured; load again;
    then what was lost, duplicated or reordered."""
    result = Result(name)
    sizes = run.sizes
    system = run.system
    assert system.owner is not None
    if await system.ensure_up():
        result.notes.append("hubbub up had stopped: started again before this scenario")
    tally = Tally()
    log_from = system.log_mark()
    async with aiohttp.ClientSession() as session:
        api = Api(session, system.hub_urls, tally, sizes.deadline_s)
        workspace = await new_workspace(run, api, f"chaos {name}")
        watchers = Watchers(system.ws_urls, system.owner.token, workspace.channel, sizes.watchers)
        await watchers.start()
        total_s = sizes.before_s + sizes.outage_s + sizes.recovery_timeout_s + sizes.after_s
        load = Load(
            api,
            system.owner.headers,
            workspace.id,
            workspace.resource_id,
            rate=sizes.rate,
            max_requests=int(sizes.rate * total_s) + 10,
        )
        done: Fault | None = None
        try:
            load.start()
            await asyncio.sleep(sizes.before_s)
            done = await fault(run, session, workspace, api, result)
            deadline = done.end + sizes.recovery_timeout_s
            while time.monotonic() < deadline:
                if await done.recovered(session):
                    result.recovery_s = time.monotonic() - done.end
                    break
                await asyncio.sleep(0.1)
            if result.recovery_s is not None and done.check is not None:
                await asyncio.sleep(max(0.0, done.end + sizes.stale_after_s - time.monotonic()))
                await done.check(session, result)
            await asyncio.sleep(sizes.after_s)
        except Exception as exc:
            result.error = f"{type(exc).__name__}: {exc}"
            result.notes.append(traceback.format_exc(limit=3).strip().replace("\n", " / "))
        finally:
            if done is not None and done.cleanup is not None:
                await done.cleanup()
            await load.stop()
            expected = set(load.created.values())
            await watchers.settle(expected, sizes.settle_s)
            result.lost = watchers.lost(expected)
            result.duplicated = watchers.duplicated()
            result.reordered = watchers.reordered()
            if watchers.resets():
                result.notes.append(f"{watchers.resets()} resubscribe(s) could not recover")
            await watchers.close()
            try:
                result.duplicated += await _duplicate_rows(api, system, workspace, load.titles)
            except RuntimeError as exc:
                result.not_shown.append(f"no duplicate rows (not counted: {exc})")
    result.requests = tally.requests
    result.failed = tally.failed
    result.status_5xx = tally.status_5xx
    result.status_500 = tally.status_500
    statuses = ", ".join(f"{s}x{n}" for s, n in sorted(tally.statuses.items()))
    result.notes.append(
        f"{tally.attempts} attempts ({statuses}; {tally.connection_errors} connection errors); "
        f"{tally.first_try}/{tally.requests} at the first try"
    )
    result.notes.extend(f"failed: {why}" for why in tally.failures)
    _logged(system, log_from, result)
    return result


def _logged(system: System, since: LogMark, result: Result) -> None:
    """What ``hubbub up`` and its children (and any extra hub) logged since ``since``: a
    note with the count of lines and tracebacks (each traceback a violation), the lines
    themselves when they are few."""
    logged = system.log_since(since)
    result.tracebacks = logged.count(TRACEBACK)
    result.notes.append(
        f"the system logged {logged.count(chr(10))} lines, {result.tracebacks} tracebacks"
    )
    lines = logged.splitlines()
    if len(lines) <= LOG_LINES_SHOWN:  # a fault's few lines, each shown (shortened)
        result.notes.extend(f"  {line[:LOG_LINE_CHARS]}" for line in lines)
    if not system.up_running():
        result.notes.append(f"hubbub up exited: {system.log_tail(8)}")


async def _duplicate_rows(api: Api, system: System, workspace: Workspace, titles: list[str]) -> int:
    """Resources the load's keys created more than once (an idempotent retry applied
    twice). ``RuntimeError`` when the list did not answer, or still had pages once as
    many were read as the load's titles fill (and five more): the count would be
    partial."""
    assert system.owner is not None
    ours = set(titles)
    counts: Counter[str] = Counter()
    cursor: str | None = None
    pages = len(titles) // 100 + 5
    for _ in range(pages):
        path = f"/workspaces/{workspace.id}/resources?limit=100"
        if cursor:
            path += f"&cursor={cursor}"
        page = await api.call("GET", path, system.owner.headers, count=False)
        if page is None:
            raise RuntimeError("the resource list did not answer")
        counts.update(item["title"] for item in page.body["items"] if item["title"] in ours)
        cursor = page.body.get("next_cursor")
        if not cursor:
            break
    else:
        raise RuntimeError(f"the resource list had more than {pages} pages")
    return sum(n - 1 for n in counts.values() if n > 1)


# --- faults -------------------------------------------------------------------------------


def _kill(child: str, sig: signal.Signals = signal.SIGKILL) -> FaultAction:
    """``sig`` to ``child``: SIGKILL, a crash; SIGTERM, a graceful stop (a worker drains:
    it finishes what it took, and what was on its way to it goes to the other). Either
    way the supervisor starts it again."""

    async def fault(
        run: Run, session: aiohttp.ClientSession, ws: Workspace, api: Api, result: Result
    ) -> Fault:
        pid = run.system.kill_child(child, sig)
        end = time.monotonic()
        result.notes.append(f"{sig.name} {child} (pid {pid})")

        async def recovered(session: aiohttp.ClientSession) -> bool:
            back = run.system.child_pids().get(child)
            return back is not None and back != pid and await _ready(run, session)

        return Fault(end, recovered)

    return fault


def _stop(
    server: Callable[[System], EmbeddedServer], seconds: Callable[[Sizes], float]
) -> FaultAction:
    async def fault(
        run: Run, session: aiohttp.ClientSession, ws: Workspace, api: Api, result: Result
    ) -> Fault:
        await _outage(server(run.system), seconds(run.sizes))
        return Fault(time.monotonic(), lambda s: _ready(run, s))

    return fault


async def _outage(server: EmbeddedServer, seconds: float) -> None:
    await asyncio.to_thread(server.stop)
    await asyncio.sleep(seconds)
    await asyncio.to_thread(server.restart)


async def add_member(system: System, api: Api, ws: Workspace, owner: User, member: User) -> None:
    """``owner`` adds ``member`` — an invitation — and ``member`` accepts it."""
    added = await api.call(
        "POST",
        f"/workspaces/{ws.id}/members",
        owner.headers,
        json={"email": member.email, "role": "member"},
        ok=(202,),
        count=False,
    )
    if added is None:
        raise RuntimeError(f"could not add the member: {api.tally.failures}")
    token = await system.mailed_token(member.email, "/invitations")
    accepted = await api.call(
        "POST", "/invitations/accept", member.headers, json={"token": token}, count=False
    )
    if accepted is None:
        raise RuntimeError(f"the member could not accept: {api.tally.failures}")


async def redis_fault(
    run: Run, session: aiohttp.ClientSession, loaded: Workspace, api: Api, result: Result
) -> Fault:
    """Redis stopped; meanwhile a member is removed and a resource changed. 5 s after it
    is back: the change must be read, and the removed member refused.

    Both happen in a quiet workspace of their own: the load's creates in the other one
    would invalidate its cache after the outage and hide a stale entry."""
    system = run.system
    owner, member = system.owner, system.member
    assert owner is not None
    assert member is not None
    ws = await new_workspace(run, api, "chaos redis-stop quiet")
    await add_member(system, api, ws, owner, member)
    # The member subscribes once (the answer is cached), and the resource is read (cached).
    async with HubbubClient(system.ws_urls, member.token, rpc_timeout=10) as client:
        await client.subscribe(ws.channel)
    for _ in range(2):
        await api.call("GET", f"/workspaces/{ws.id}/resources/{ws.resource_id}", owner.headers)

    await asyncio.to_thread(system.redis.stop)
    down = time.monotonic()
    title = f"changed-during-redis-outage-{int(down)}"
    finished: list[float] = []

    async def timed(method: str, path: str, json: object = None) -> Answer | None:
        answer = await api.call(method, path, owner.headers, json=json)
        if answer is not None:
            finished.append(time.monotonic())  # when it succeeded
        return answer

    changes = asyncio.gather(
        timed("PATCH", f"/workspaces/{ws.id}/resources/{ws.resource_id}", {"title": title}),
        timed("DELETE", f"/workspaces/{ws.id}/members/{member.id}"),
    )
    await asyncio.sleep(run.sizes.outage_s)
    restarting = time.monotonic()  # the outage's end: Redis may serve before restart returns
    await asyncio.to_thread(system.redis.restart)
    up = time.monotonic()
    patched, removed = await changes
    made = sum(1 for answer in (patched, removed) if answer is not None)
    during = sum(1 for at in finished if at < restarting)
    result.notes.append(
        f"Redis stopped {run.sizes.outage_s:g}s; of the resource change and the member "
        f"removal {made}/2 succeeded, {during} of them while Redis was down"
    )
    if during < 2:  # the check below would prove nothing about an outage
        result.not_shown.append(
            f"the changes made while Redis was down (only {during} of 2 finished before "
            "it was back)"
        )
    version = int(patched.body["version"]) if patched is not None else None

    async def check(session: aiohttp.ClientSession, result: Result) -> None:
        stale: list[str] = []
        for hub, ws_url in zip(system.hub_urls, system.ws_urls, strict=True):
            if version is not None:
                async with session.get(
                    f"{hub}/api/v1/workspaces/{ws.id}/resources/{ws.resource_id}",
                    headers=owner.headers,
                ) as response:
                    body = await response.json()
                    if response.status != 200 or int(body.get("version", 0)) < version:
                        seen = body.get("version")
                        stale.append(f"GET on {hub}: {response.status}, version {seen} < {version}")
            if removed is not None:
                async with session.get(
                    f"{hub}/api/v1/workspaces/{ws.id}", headers=member.headers
                ) as response:
                    if response.status != 404:
                        stale.append(f"removed member GET workspace on {hub}: {response.status}")
                if await _can_subscribe(session, ws_url, member.token, ws.channel):
                    stale.append(f"removed member subscribed on {ws_url}")
        result.stale += len(stale)
        checks = []
        if version is not None:
            checks.append(f"GET reads version >= {version}")
        if removed is not None:
            checks.append("the removed member is refused (REST 404, no subscription)")
        hubs = len(system.hub_urls)
        result.notes.append(f"checked on {hubs} hubs 5 s after recovery: " + "; ".join(checks))
        result.notes.extend(f"stale: {text}" for text in stale)

    return Fault(up, lambda s: _ready(run, s), check)


async def nats_link_fault(
    run: Run, session: aiohttp.ClientSession, loaded: Workspace, api: Api, result: Result
) -> Fault:
    """A third hub reaches NATS through a proxy. A member subscribed through that hub is
    removed while its link is cut, so it misses the revocation; 5 s after the link is
    back the hub must have re-checked: the subscription gone, a new one refused."""
    system = run.system
    owner, member = system.owner, system.member
    assert owner is not None
    assert member is not None
    ws = await new_workspace(run, api, "chaos nats-link quiet")
    await add_member(system, api, ws, owner, member)
    proxy = TcpProxy(HOST, system.nats.port)
    await proxy.start()
    hub = system.start_extra_hub(proxy.url("nats"))
    ws_url = "ws" + hub.removeprefix("http") + "/ws"
    client = HubbubClient([ws_url], member.token, rpc_timeout=10)

    async def cleanup() -> None:
        await client.close()
        await asyncio.to_thread(system.stop_extra_hubs)
        await proxy.stop()

    try:
        await wait_until_200(
            hub + "/api/v1/ready", timeout=60, processes=system.extra[-1:], what="the extra hub"
        )
        await client.connect()
        sub = await client.subscribe(ws.channel)
        await proxy.cut()
        path = f"/workspaces/{ws.id}/members/{member.id}"
        removed = await api.call("DELETE", path, owner.headers)
        await asyncio.sleep(run.sizes.nats_outage_s)
        await proxy.restore()
    except BaseException:
        await cleanup()
        raise
    end = time.monotonic()
    result.notes.append(
        f"hub {hub}'s NATS link cut {run.sizes.nats_outage_s:g}s; member removed meanwhile: "
        + ("yes" if removed is not None else "no (the removal failed)")
    )

    async def recovered(session: aiohttp.ClientSession) -> bool:
        return await answers_200(session, hub + "/api/v1/ready") and await _ready(run, session)

    async def check(session: aiohttp.ClientSession, result: Result) -> None:
        stale = []
        if sub.active and ws.channel in client.subscriptions:
            stale.append(f"the removed member is still subscribed through {hub}")
        if await _can_subscribe(session, ws_url, member.token, ws.channel):
            stale.append(f"the removed member subscribed again through {hub}")
        result.stale += len(stale)
        result.notes.append(
            "checked 5 s after the link is back: the subscription dropped, a new one refused"
        )
        result.notes.extend(f"stale: {text}" for text in stale)

    return Fault(end, recovered, check, cleanup)


async def _can_subscribe(
    session: aiohttp.ClientSession, ws_url: str, token: str, channel: str
) -> bool:
    """Does the hub let this token subscribe to the channel (one socket, one try)? A
    refusal, or the hub closing the socket, is a no."""
    async with session.ws_connect(ws_url, protocols=(SUBPROTOCOL,), heartbeat=None) as ws:
        try:
            await ws.send_str(orjson.dumps({"id": 0, "op": "connect", "token": token}).decode())
            if "result" not in await _reply(ws, 0):
                return False
            frame = {"id": 1, "op": "subscribe", "channel": channel}
            await ws.send_str(orjson.dumps(frame).decode())
            return "result" in await _reply(ws, 1)
        except ConnectionError:
            return False


async def _reply(
    ws: aiohttp.ClientWebSocketResponse, command_id: int, timeout: float = 30
) -> dict[str, Any]:
    """The reply to command ``command_id`` (pushes before it skipped); a close raises
    ``ConnectionError``, no reply within ``timeout`` ``TimeoutError`` (however often
    other frames come meanwhile)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no reply to command {command_id} within {timeout:g}s")
        msg = await ws.receive(timeout=left)
        if msg.type is not aiohttp.WSMsgType.TEXT:
            raise ConnectionError(f"closed {ws.close_code}")
        value = orjson.loads(msg.data)
        for frame in value if isinstance(value, list) else [value]:
            if isinstance(frame, dict) and frame.get("id") == command_id:
                return frame


# --- the storm ---------------------------------------------------------------------------


async def storm(run: Run) -> Result:
    """``sizes.sockets`` sockets connect and subscribe to one workspace channel at once
    (half on each hub); a socket that fails tries again (at most twice)."""
    result = Result("storm")
    system = run.system
    assert system.owner is not None
    if await system.ensure_up():
        result.notes.append("hubbub up had stopped: started again before this scenario")
    tally = Tally()
    log_from = system.log_mark()
    n = run.sizes.sockets
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        api = Api(session, system.hub_urls, tally, run.sizes.deadline_s)
        workspace = await new_workspace(run, api, "chaos storm")
        token = system.owner.token
        held: list[aiohttp.ClientWebSocketResponse] = []
        first_ok = 0
        failed = 0
        closes: Counter[str] = Counter()
        go = asyncio.Event()

        async def one(i: int) -> None:
            nonlocal first_ok, failed
            await go.wait()
            for attempt in range(3):
                ws = None
                try:
                    ws = await session.ws_connect(
                        system.ws_urls[i % len(system.ws_urls)],
                        protocols=(SUBPROTOCOL,),
                        heartbeat=None,
                        timeout=aiohttp.ClientWSTimeout(ws_close=10),
                    )
                    await ws.send_str(
                        orjson.dumps({"id": 0, "op": "connect", "token": token}).decode()
                    )
                    reply = await _reply(ws, 0, 60)
                    if "result" in reply:
                        frame = {"id": 1, "op": "subscribe", "channel": workspace.channel}
                        await ws.send_str(orjson.dumps(frame).decode())
                        reply = await _reply(ws, 1, 60)
                    if "result" in reply:
                        held.append(ws)
                        first_ok += attempt == 0
                        return
                    closes[f"error {reply.get('error', {}).get('code')}"] += 1
                except (aiohttp.ClientError, ConnectionError, TimeoutError, OSError) as exc:
                    code = ws.close_code if ws is not None else None
                    closes[f"close {code}" if code else type(exc).__name__] += 1
                if ws is not None:
                    with contextlib.suppress(Exception):
                        await ws.close()
                await asyncio.sleep(0.2 * (attempt + 1))
            failed += 1

        tasks = [asyncio.create_task(one(i)) for i in range(n)]
        start = time.monotonic()
        go.set()
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - start
        for ws in held:
            with contextlib.suppress(Exception):
                await ws.close()
    result.requests = n
    result.failed = failed
    result.first_try = first_ok / n if n else 1.0
    result.closes_4500 = closes.get("close 4500", 0)
    result.recovery_s = elapsed
    result.notes.append(f"{n} sockets connected+subscribed in {elapsed:.1f}s (recovery column)")
    if closes:
        result.notes.append(
            "failed attempts: " + ", ".join(f"{k}x{v}" for k, v in closes.most_common())
        )
    _logged(system, log_from, result)
    return result


SCENARIOS: dict[str, Callable[[Run], Awaitable[Result]]] = {
    "worker-kill": lambda run: under_load(run, "worker-kill", _kill("worker-1")),
    "worker-stop": lambda run: under_load(run, "worker-stop", _kill("worker-1", signal.SIGTERM)),
    "hub-kill": lambda run: under_load(run, "hub-kill", _kill("hub-1")),
    "postgres-stop": lambda run: under_load(
        run, "postgres-stop", _stop(lambda s: s.postgres, lambda z: z.outage_s)
    ),
    "redis-stop": lambda run: under_load(run, "redis-stop", redis_fault),
    "nats-restart": lambda run: under_load(
        run, "nats-restart", _stop(lambda s: s.nats, lambda z: z.nats_outage_s)
    ),
    "nats-link-cut": lambda run: under_load(run, "nats-link-cut", nats_link_fault),
    "storm": storm,
}

__all__ = ["CI_SIZES", "SCENARIOS", "Run", "Sizes"]
