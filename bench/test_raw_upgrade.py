"""The raw upgrade baseline (``bench sockets --target raw``) holds real sockets: it
answers the upgrade as RFC 6455 says (aiohttp's client checks the accept key), counts
its sockets, reads their frames, and lets them go when they close."""

from __future__ import annotations

import aiohttp

from bench.targets import RawTarget


async def test_it_upgrades_counts_and_lets_go_of_its_sockets() -> None:
    target = RawTarget()
    await target.start()
    try:
        url = f"ws://127.0.0.1:{target.server.port}/ws"
        async with aiohttp.ClientSession() as session:
            # The server never answers a close frame (it reads and drops what sockets send):
            # the client gives up on that handshake at once.
            quick = aiohttp.ClientWSTimeout(ws_close=0.05)
            sockets = [await session.ws_connect(url, timeout=quick) for _ in range(3)]
            await target.await_sockets(3, timeout=10)
            await sockets[0].send_str("ignored")
            await sockets[0].ping()
            for ws in sockets:
                await ws.close()
            await target.await_sockets(0, timeout=10)
            async with session.get(f"http://127.0.0.1:{target.server.port}/other") as r:
                assert r.status == 400
    finally:
        await target.stop()
