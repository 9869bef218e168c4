"""What a test's ``HubbubClient`` was told, waited for (bounded)."""

from __future__ import annotations

from hubbub.client import HubbubClient
from tests.support.waiting import eventually


async def first_close(client: HubbubClient, timeout: float = 10.0) -> int:
    """The code of the first close the client got (from the server, or its own)."""

    async def closed() -> int:
        assert client.closes, "not closed yet"
        return client.closes[0][0]

    code: int = await eventually(closed, timeout=timeout)
    return code
