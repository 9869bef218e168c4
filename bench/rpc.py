"""A cached read over WebSocket RPC, beside the same read over REST, in one run.

    python -m bench.rpc [--requests 3000] [--rounds 3]

One hub and one worker (``hubbub serve`` and ``hubbub worker`` processes) on embedded
PostgreSQL/NATS/Redis (or the three URLs). A user, a workspace and a resource are made
through the API; the read is ``resources.get`` — served from the worker's Redis cache
after the first call — as ``GET /api/v1/workspaces/{ws}/resources/{id}`` on a keep-alive
connection (the baseline) and as an ``rpc`` frame on one WebSocket
(``hubbub.client.HubbubClient``). Concurrency 1 and 64 (64 requests in flight: REST over
64 pooled connections, RPC on one socket). The hub's per-connection command rate limit
is lifted for the run (a benchmark, not a client). Rounds alternate; figures are medians
over rounds. The last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import uvloop

from bench.latency import compare, print_table
from bench.services import services
from hubbub.client import HubbubClient
from hubbub.embedded.process import die_with_parent, free_port

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "a benchmark password 1"  # noqa: S105 - a throwaway account of a benchmark


async def wait_ready(base: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            try:
                async with session.get(base + "/api/v1/ready") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the hub did not get ready")


async def arrange(base: str, settings_env: dict[str, str]) -> tuple[str, str, str]:
    """A user (made with the operator command), signed in; a workspace and a resource."""
    from hubbub.accounts_admin import create_user
    from hubbub.config import Settings

    settings = Settings(_env_file=None, database_url=settings_env["DATABASE_URL"])
    await create_user(settings, "bench@example.com", password=PASSWORD, out=io.StringIO())
    async with aiohttp.ClientSession(base_url=base) as http:
        async with http.post(
            "/api/v1/auth/login", json={"email": "bench@example.com", "password": PASSWORD}
        ) as r:
            token = (await r.json())["access_token"]
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


async def run(args: argparse.Namespace, urls: dict[str, str]) -> dict[str, Any]:
    port = free_port()
    env = {
        **os.environ,
        **urls,
        "HUBBUB_SECRET_KEY": "bench-secret-" + "x" * 40,
        "HUBBUB_STATE_DIR": tempfile.mkdtemp(prefix="hubbub-bench-"),
        "HUBBUB_LOG_LEVEL": "WARNING",
        "HUBBUB_ACCESS_LOG": "false",
        "HUBBUB_WS_COMMANDS_PER_S": "1000000",
        "HUBBUB_WS_COMMANDS_BURST": "1000000",
        "PYTHONPATH": str(ROOT),
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "hubbub.cli", "worker"],
            env=env,
            cwd=ROOT,
            preexec_fn=die_with_parent(),
        ),
        subprocess.Popen(
            [sys.executable, "-m", "hubbub.cli", "serve", "--port", str(port)],
            env=env,
            cwd=ROOT,
            preexec_fn=die_with_parent(),
        ),
    ]
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(base)
        token, workspace, resource = await arrange(base, env)
        path = f"{base}/api/v1/workspaces/{workspace}/resources/{resource}"
        auth = {"Authorization": f"Bearer {token}"}
        http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
        ws = HubbubClient(f"ws://127.0.0.1:{port}/ws", token, rpc_timeout=30)
        await ws.connect()
        params = {"workspace_id": workspace, "resource_id": resource}

        async def rest(_worker: int, _n: int) -> None:
            async with http.get(path, headers=auth) as r:
                if r.status != 200:
                    raise RuntimeError(f"REST read: {r.status}")
                orjson.loads(await r.read())

        async def rpc(_worker: int, _n: int) -> None:
            await ws.rpc("resources.get", params)

        await rest(0, 0)
        await rpc(0, 0)
        results = await compare(
            ("rest", rest), ("ws_rpc", rpc), requests=args.requests, rounds=args.rounds
        )
        await ws.close()
        await http.close()
        return results
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(15)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with services() as urls:
        results = uvloop.run(run(args, urls))
    print(f"cached read (resources.get): {args.requests} requests x {args.rounds} rounds, medians")
    print_table(results, "rest", "ws_rpc")
    print(orjson.dumps({"bench": "rpc", "results": results}).decode())


if __name__ == "__main__":
    main()
