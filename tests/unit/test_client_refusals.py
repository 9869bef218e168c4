"""A connect in the upgrade request that the hub refuses: the client sees a status and
headers, and makes of them the ``RemoteError`` the ``connect`` frame's error would be."""

from __future__ import annotations

from typing import Any

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

from hubbub.client.client import _refused_connect


def refusal(status: int, **headers: str) -> aiohttp.WSServerHandshakeError:
    info: Any = None
    return aiohttp.WSServerHandshakeError(
        info,
        (),
        status=status,
        message="refused",
        headers=CIMultiDictProxy(CIMultiDict({k.replace("_", "-"): v for k, v in headers.items()})),
    )


def test_a_deactivated_account_keeps_its_reason() -> None:
    error = _refused_connect(
        refusal(
            401,
            WWW_Authenticate='Bearer realm="hubbub", error="invalid_token", '
            'error_description="deactivated"',
        )
    )
    assert error is not None
    assert (error.code, error.status, error.details) == (
        "unauthorized",
        401,
        {"reason": "deactivated"},
    )


def test_a_bad_token_without_a_reason_is_unauthorized() -> None:
    error = _refused_connect(refusal(401, WWW_Authenticate='Bearer realm="hubbub"'))
    assert error is not None
    assert (error.code, error.details) == ("unauthorized", {})


def test_the_socket_cap_and_an_outage_say_when_to_come_back() -> None:
    capped = _refused_connect(refusal(429, Retry_After="1"))
    down = _refused_connect(refusal(503, Retry_After="5"))
    assert capped is not None
    assert down is not None
    assert (capped.code, capped.details) == ("rate_limited", {"retry_after": 1})
    assert (down.code, down.details) == ("unavailable", {"retry_after": 5})


def test_a_refused_upgrade_stays_a_refused_upgrade() -> None:
    for status in (400, 403, 404):
        assert _refused_connect(refusal(status)) is None
