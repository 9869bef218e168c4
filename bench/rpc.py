"""Hubbub's request path beside the monolith it replaces, and beside its own REST, in one run.

    python -m bench.rpc [--rounds 3] [--seconds 4] [--requests 3000] [--no-cached-read]

One hub and one worker (``hubbub serve`` and ``hubbub worker`` processes) on embedded
PostgreSQL/NATS/Redis (or the three URLs), and the seed's stack (``bench/monolith.py``:
FastAPI + SQLAlchemy async, one uvicorn process) on the same database. A user is made
with the operator command and signs in through the API; the same access token is used
against both targets, and the user signs in again shortly before it expires (a run on a
busy host can outlast one).

1. ``users.me`` over WebSocket RPC, on one socket per target with the same client
   (``hubbub.client.HubbubClient``): the monolith (baseline) against Hubbub, at
   concurrency 1 and 50 (requests in flight on the socket). Rounds of ``--seconds``
   (after a quarter of that as warm-up) rotate the two targets' order; figures are
   medians over rounds, p50 ratios the median of the rounds' own ratios, the req/s ratio
   Hubbub's median over the monolith's. Then, per target and concurrency, one more
   ``--seconds`` of load with the CPU time (user + system) of the hub, the worker and
   the monolith read before and after: CPU per RPC (with each process's write system
   calls and involuntary context switches per RPC). The hub's is also measured beside
   a bare aiohttp rpc echo (``bench/baselines/bare_rpc.py``: the same frames and
   client, answered with the same ``users.me`` result and no work), so it compares
   across hosts of different speed.
2. A cached read (``resources.get``, from the worker's Redis cache after the first call)
   as ``GET /api/v1/workspaces/{ws}/resources/{id}`` on keep-alive connections (the
   baseline) and as an ``rpc`` frame on one WebSocket, at concurrency 1 and 64
   (``--requests`` per round). Skipped with ``--no-cached-read``.

The hub's per-connection command rate limit is lifted for the run (a benchmark, not a
client), and so are the limits on the user's sign-ins and sessions. The last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import aiohttp
import orjson
import psutil
import uvloop

from bench import monolith
from bench.latency import Call, compare, measure, print_table
from bench.probes import cpu_writes_preempted
from bench.services import services
from bench.stack import ROOT, stack_env, start_stack
from bench.targets import ServerProcess
from hubbub.client import HubbubClient
from tests.support.http import wait_until_200
from tests.support.ports import quiet_port

PASSWORD = "a benchmark password 1"  # noqa: S105 - a throwaway account of a benchmark


async def wait_ready(base: str, processes: Iterable[subprocess.Popen[bytes]]) -> None:
    """Until the hub at ``base`` (and a worker behind it) is ready; at once an error when
    one of ``processes`` (the hub and its workers: ``start_stack``'s) has exited."""
    await wait_until_200(
        base + "/api/v1/ready", timeout=60, processes=processes, what="the hub ready"
    )


def expiry_of(token: str) -> float:
    """The ``exp`` claim of a JWT (not verified: the hub does that)."""
    payload = token.split(".")[1]
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return float(claims["exp"])


class AccessToken:
    """The benchmark user's access token, signed in for again ``margin`` seconds before it
    expires.

    The hub closes a socket whose token expires and refuses to reconnect it with that
    token; a fixed token thus ends a run that outlasts it (``HUBBUB_ACCESS_TOKEN_TTL_S``,
    15 minutes by default: a run on a busy host can take longer) in a storm of refused
    reconnects. ``get`` is the ``HubbubClient``'s token provider (also what it answers the
    hub's ``expiring`` push with); REST calls take ``headers``."""

    def __init__(
        self,
        sign_in: Callable[[], Awaitable[str]],
        token: str,
        *,
        margin: float = 120.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sign_in = sign_in
        self._clock = clock
        self.margin = margin
        self._renewing = asyncio.Lock()
        self._use(token)

    def _use(self, token: str) -> None:
        self.token = token
        self.expires = expiry_of(token)
        self.auth = {"Authorization": f"Bearer {token}"}

    async def get(self) -> str:
        if self._clock() > self.expires - self.margin:
            async with self._renewing:
                if self._clock() > self.expires - self.margin:  # not renewed meanwhile
                    self._use(await self._sign_in())
        return self.token

    async def headers(self) -> dict[str, str]:
        await self.get()
        return self.auth


async def sign_in(base: str) -> str:
    """A new access token of the benchmark user."""
    async with (
        aiohttp.ClientSession(base_url=base) as http,
        http.post(
            "/api/v1/auth/login", json={"email": "bench@example.com", "password": PASSWORD}
        ) as r,
    ):
        if r.status != 200:
            raise RuntimeError(f"signing in: {r.status} {await r.text()}")
        token: str = (await r.json())["access_token"]
        return token


async def arrange(base: str, settings_env: dict[str, str]) -> tuple[str, str, str]:
    """A user (made with the operator command), signed in; a workspace and a resource."""
    from cli.admin.accounts import create_user
    from hubbub.config import Settings

    settings = Settings(_env_file=None, database_url=settings_env["DATABASE_URL"])
    await create_user(settings, "bench@example.com", password=PASSWORD, out=io.StringIO())
    token = await sign_in(base)
    async with aiohttp.ClientSession(base_url=base) as http:
        auth = {"Authorization": f"Bearer {token}"}
        async with http.post("/api/v1/workspaces", json={"name": "bench"}, headers=auth) as r:
            workspace = (await r.json())["id"]
        async with http.post(
            f"/api/v1/workspaces/{workspace}/resources",
            json={"kind": "note", "title": "a cached read", "body": "x" * 200},
            headers=auth,
        ) as r:
            resource = (await r.json())["id"]
    return token, workspace, resource


async def cpu_per_rpc(
    call: Call,
    concurrency: int,
    seconds: float,
    procs: dict[str, psutil.Process],
    *,
    warm_up_s: float | None = None,
) -> dict[str, float]:
    """Per RPC during ``seconds`` of load, for each process: µs of CPU (user + system),
    write system calls, and involuntary context switches (the process preempted while it
    had work: on a host with fewer cores than busy processes, what a write's wake-up of
    its reader can cost the writer). ``warm_up_s`` of load come first (a quarter of
    ``seconds`` unless given; 0: none)."""

    def probe() -> dict[str, tuple[float, int, int]]:
        return {name: cpu_writes_preempted(proc) for name, proc in procs.items()}

    warm_up_s = seconds / 4 if warm_up_s is None else warm_up_s
    if warm_up_s > 0:
        await measure(call, 1000, concurrency, seconds=warm_up_s)
    before = probe()
    done = len(await measure(call, 0, concurrency, seconds=seconds))
    after = probe()
    figures: dict[str, float] = {}
    for name in procs:
        (cpu0, writes0, preempted0), (cpu1, writes1, preempted1) = before[name], after[name]
        figures[f"{name}_us"] = round((cpu1 - cpu0) / done * 1e6, 1)
        figures[f"{name}_writes"] = round((writes1 - writes0) / done, 2)
        figures[f"{name}_preempted"] = round((preempted1 - preempted0) / done, 2)
    return {**figures, "rpcs": done}


async def run(args: argparse.Namespace, urls: dict[str, str]) -> dict[str, Any]:
    port = quiet_port(1)
    env = stack_env(urls)
    procs = start_stack(env, port)
    mono: asyncio.subprocess.Process | None = None
    bare: ServerProcess | None = None
    base = f"http://127.0.0.1:{port}"
    results: dict[str, Any] = {}
    try:
        await wait_ready(base, procs)
        first, workspace, resource = await arrange(base, env)
        token = AccessToken(lambda: sign_in(base), first)
        mono, mono_port = await monolith.start(env, str(ROOT))
        hub_ws = HubbubClient(f"ws://127.0.0.1:{port}/ws", token.get, rpc_timeout=30)
        # The baselines know only the ``connect`` frame (the connect is not measured).
        mono_ws = HubbubClient(
            f"ws://127.0.0.1:{mono_port}/ws", token.get, rpc_timeout=30, connect_in_upgrade=False
        )
        await hub_ws.connect()
        await mono_ws.connect()

        async def hub_me(_worker: int, _n: int) -> None:
            await hub_ws.rpc("users.me")

        async def mono_me(_worker: int, _n: int) -> None:
            await mono_ws.rpc("users.me")

        me = await hub_ws.rpc("users.me")
        if me != await mono_ws.rpc("users.me"):
            raise RuntimeError("the two targets answer users.me differently")
        bare = ServerProcess(
            [
                sys.executable,
                "-m",
                "bench.baselines.bare_rpc",
                "--result",
                orjson.dumps(me).decode(),
            ]
        )
        await bare.start()
        bare_ws = HubbubClient(
            f"ws://127.0.0.1:{bare.port}/ws", token.get, rpc_timeout=30, connect_in_upgrade=False
        )
        await bare_ws.connect()

        async def bare_me(_worker: int, _n: int) -> None:
            await bare_ws.rpc("users.me")

        if await bare_ws.rpc("users.me") != me:
            raise RuntimeError("the bare rpc echo answers users.me differently")
        results["users_me"] = await compare(
            ("monolith", mono_me),
            ("hubbub", hub_me),
            requests=args.requests,
            rounds=args.rounds,
            concurrencies=(1, 50),
            seconds=args.seconds,
        )
        sides: dict[str, tuple[Call, dict[str, psutil.Process]]] = {
            "monolith": (mono_me, {"monolith": psutil.Process(mono.pid)}),
            "hubbub": (
                hub_me,
                {"hub": psutil.Process(procs[1].pid), "worker": psutil.Process(procs[0].pid)},
            ),
            "bare": (bare_me, {"bare": psutil.Process(bare.pid)}),
        }
        results["cpu_per_rpc"] = {
            f"{side}_c{c}": await cpu_per_rpc(call, c, args.seconds, watched)
            for c in (1, 50)
            for side, (call, watched) in sides.items()
        }
        await hub_ws.close()
        await mono_ws.close()
        await bare_ws.close()
        print(f"users.me over WS RPC: {args.seconds} s x {args.rounds} rounds per side, medians")
        print_table(results["users_me"], "monolith", "hubbub")
        print_users_me(results)
        sys.stdout.flush()
        if args.cached_read:
            results["cached_read"] = await cached_read(args, base, token, workspace, resource)
        return results
    finally:
        if bare is not None:
            await bare.stop()
        if mono is not None:
            await monolith.stop(mono)
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(15)


async def cached_read(
    args: argparse.Namespace, base: str, token: AccessToken, workspace: str, resource: str
) -> dict[str, Any]:
    path = f"{base}/api/v1/workspaces/{workspace}/resources/{resource}"
    http = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=64), timeout=aiohttp.ClientTimeout(total=30)
    )
    ws = HubbubClient(base.replace("http", "ws", 1) + "/ws", token.get, rpc_timeout=30)
    await ws.connect()
    params = {"workspace_id": workspace, "resource_id": resource}

    async def rest(_worker: int, _n: int) -> None:
        async with http.get(path, headers=await token.headers()) as r:
            if r.status != 200:
                raise RuntimeError(f"REST read: {r.status}")
            orjson.loads(await r.read())

    async def rpc(_worker: int, _n: int) -> None:
        await ws.rpc("resources.get", params)

    await rest(0, 0)
    await rpc(0, 0)
    try:
        return await compare(
            ("rest", rest), ("ws_rpc", rpc), requests=args.requests, rounds=args.rounds
        )
    finally:
        await ws.close()
        await http.close()


def print_users_me(results: dict[str, Any]) -> None:
    me = results["users_me"]
    c50, c1 = me["c50"], me["c1"]
    rps_ratio = c50["hubbub"]["rps"] / c50["monolith"]["rps"]
    print(
        f"users.me c=50: hubbub {c50['hubbub']['rps']} req/s, monolith "
        f"{c50['monolith']['rps']} req/s, ratio {rps_ratio:.2f} (goal >= 2)"
    )
    print(
        f"users.me c=1 p50: hubbub {c1['hubbub']['p50_us'] / 1000:.2f} ms, monolith "
        f"{c1['monolith']['p50_us'] / 1000:.2f} ms, ratio {c1['hubbub']['ratio_p50']:.2f}"
        " (goal <= 1)"
    )
    cpu_per_rpc = results["cpu_per_rpc"]
    for key, cpu in cpu_per_rpc.items():
        figures = ", ".join(
            f"{k[:-3]} {v} µs ({cpu[k[:-3] + '_writes']} writes, "
            f"{cpu[k[:-3] + '_preempted']} preempted)"
            for k, v in cpu.items()
            if k.endswith("_us")
        )
        print(f"CPU per RPC, {key}: {figures} ({cpu['rpcs']} RPCs)")
    hub, bare = cpu_per_rpc["hubbub_c50"]["hub_us"], cpu_per_rpc["bare_c50"]["bare_us"]
    print(
        f"hub CPU per RPC c=50: {hub} µs, {hub / bare:.2f}x the bare aiohttp rpc echo's "
        f"{bare} µs in this run (goal <= 60 µs)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--no-cached-read", dest="cached_read", action="store_false")
    args = parser.parse_args()
    with services() as urls:
        results = uvloop.run(run(args, urls))
    if args.cached_read:
        print(
            f"cached read (resources.get): {args.requests} requests x {args.rounds} rounds, medians"
        )
        print_table(results["cached_read"], "rest", "ws_rpc")
    print(orjson.dumps({"bench": "rpc", "results": results}).decode())


if __name__ == "__main__":
    main()
