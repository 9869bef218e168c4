"""A socket's caller is the caller REST makes from the same claims (``hub.calls``)."""

from __future__ import annotations

import pytest

from hub import calls
from hub.ws.sessions import socket_caller
from hubbub.tokens import AccessClaims


@pytest.mark.parametrize("ip", ["203.0.113.7", None])
def test_the_socket_caller_equals_the_rest_caller(ip: str | None) -> None:
    claims = AccessClaims(sub="u1", role="member", sid="s1", jti="j", iat=1, exp=2)
    rest, socket = calls.caller_of(claims, ip), socket_caller(claims, ip)
    assert socket == rest
    assert socket.model_dump_json() == rest.model_dump_json()  # what the hub signs
    assert socket.model_fields_set == rest.model_fields_set
    assert socket.is_user


def test_socket_callers_share_one_fields_set_that_a_copy_does_not_touch() -> None:
    claims = AccessClaims(sub="u1", role="member", sid="s1", jti="j", iat=1, exp=2)
    a, b = socket_caller(claims, None), socket_caller(claims, "198.51.100.1")
    assert a.__pydantic_fields_set__ is b.__pydantic_fields_set__
    changed = a.model_copy(update={"service": "x"})
    assert "service" in changed.model_fields_set
    assert "service" not in b.model_fields_set
