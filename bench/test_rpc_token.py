"""``bench rpc`` signs in again before its access token expires (a run on a busy host can
outlast one: with a fixed token the hub closes the sockets at expiry and refuses them
back). Not timed; no servers: a fake sign-in and an injected clock.

``python -m pytest bench/test_rpc_token.py``.
"""

from __future__ import annotations

import asyncio
import base64

import orjson

from bench.rpc import AccessToken, expiry_of


def jwt(exp: float, n: int = 0) -> str:
    def part(value: object) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(value)).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part({'exp': exp, 'n': n})}.sig"


def test_the_expiry_is_read_from_the_token() -> None:
    assert expiry_of(jwt(1_800_000_123)) == 1_800_000_123


async def test_a_token_is_kept_until_shortly_before_it_expires_then_renewed_once() -> None:
    now = [1000.0]
    issued: list[str] = []

    async def sign_in() -> str:
        await asyncio.sleep(0)  # concurrent callers wait for the one renewal
        issued.append(jwt(now[0] + 900, len(issued) + 1))
        return issued[-1]

    first = jwt(1900)
    token = AccessToken(sign_in, first, margin=120, clock=lambda: now[0])
    assert await token.get() == first
    now[0] = 1779  # 121 s left: still good
    assert await token.get() == first
    assert await token.headers() == {"Authorization": f"Bearer {first}"}
    now[0] = 1781  # 119 s left: sign in again, once for all who ask at that moment
    got = await asyncio.gather(*(token.get() for _ in range(5)))
    assert issued == [got[0]]
    assert set(got) == {issued[0]}
    assert await token.headers() == {"Authorization": f"Bearer {issued[0]}"}
    assert token.expires == 1781 + 900
