"""The one way tests, benchmarks and chaos runs ask a server whether it is ready
(tests/support/http.py): a server that takes the request and never answers is "not
ready" once the request's own time limit has passed; the wait fails when the server's
process exits."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import aiohttp
import pytest

from tests.support.http import answers_200, wait_until_200


async def test_a_server_that_never_answers_is_not_ready_after_the_request_s_limit() -> None:
    taken: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        taken.append(writer)  # takes the request, answers nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with aiohttp.ClientSession() as session, asyncio.timeout(5):
            assert not await answers_200(session, f"http://127.0.0.1:{port}/ready", timeout=0.2)
        assert len(taken) == 1  # it was asked, and did not answer
    finally:
        for writer in taken:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_waiting_fails_at_once_when_the_server_s_process_has_exited() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(10)
    with pytest.raises(AssertionError, match="exited with 0"):
        await wait_until_200("http://127.0.0.1:9/ready", timeout=30, processes=[proc])
