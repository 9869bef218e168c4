"""A server's health over HTTP (a hub's ``/api/v1/ready`` or ``/api/v1/health``, an admin
listener's ``/ready``), asked the same way by the tests, the benchmarks and the chaos
runs: one GET with a time limit of its own; 200 or not."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterable

import aiohttp

from tests.support.waiting import wait_for

ASK_TIMEOUT_S = 3.0  # one request: a server that does not answer in time is not ready


async def answers_200(
    session: aiohttp.ClientSession, url: str, timeout: float = ASK_TIMEOUT_S
) -> bool:
    """Does ``url`` answer 200 within ``timeout``? Refused, failed or slow: no."""
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


async def wait_until_200(
    url: str,
    *,
    timeout: float = 60.0,
    processes: Iterable[subprocess.Popen[bytes] | asyncio.subprocess.Process] = (),
    what: str | None = None,
) -> None:
    """Ask ``url`` until it answers 200 (``AssertionError`` after ``timeout``); fail at
    once when one of ``processes`` (the server, what it needs) has exited."""
    watched = list(processes)
    async with aiohttp.ClientSession() as session:

        async def answered() -> bool:
            for proc in watched:
                if isinstance(proc, subprocess.Popen):
                    assert proc.poll() is None, f"{proc.args!r} exited with {proc.returncode}"
                else:
                    assert proc.returncode is None, f"pid {proc.pid} exited: {proc.returncode}"
            return await answers_200(session, url)

        await wait_for(answered, timeout, interval=0.1, what=what or f"200 from {url}")
