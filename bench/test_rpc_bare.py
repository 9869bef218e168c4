"""``bench rpc``'s bare aiohttp rpc echo answers as the hub does for what the benchmark
sends (not timed): ``HubbubClient`` connects, and every ``rpc`` gets the given result.

``python -m pytest bench/test_rpc_bare.py``.
"""

from __future__ import annotations

import sys

import orjson

from bench.targets import ServerProcess
from hubbub.client import HubbubClient

ME = {"id": "0b6f4c36-4d1c-4a57-8c1e-2f0d6a1e9b10", "email": "bare@example.com", "n": 1}


async def test_every_rpc_is_answered_with_the_given_result() -> None:
    server = ServerProcess(
        [sys.executable, "-m", "bench.baselines.bare_rpc", "--result", orjson.dumps(ME).decode()]
    )
    await server.start()
    try:
        url = f"ws://127.0.0.1:{server.port}/ws"
        async with HubbubClient(
            url, "any token", rpc_timeout=10, connect_in_upgrade=False
        ) as client:
            assert [await client.rpc("users.me") for _ in range(3)] == [ME] * 3
            assert await client.rpc("anything.else", {"x": 1}) == ME
    finally:
        await server.stop()
