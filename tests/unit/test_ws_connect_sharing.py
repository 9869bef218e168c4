"""What sockets of a reconnect storm share: their caller, their channel, their address's
canonical text — each equal to what would be built afresh, and never shared where it
would differ."""

from __future__ import annotations

import pytest

from hub import calls
from hub.client_ip import normalized
from hub.ws.sessions import socket_caller
from hub.ws.subscriptions import parse_channel
from hubbub.contracts.channels import Channel
from hubbub.contracts.errors import BadRequest
from hubbub.tokens import AccessClaims


def claims(sid: str = "s1", role: str = "member") -> AccessClaims:
    return AccessClaims(sub="u1", role=role, sid=sid, jti="j", iat=1, exp=2)


def test_sockets_of_one_session_and_address_share_one_caller() -> None:
    first, second = socket_caller(claims(), "203.0.113.7"), socket_caller(claims(), "203.0.113.7")
    assert first is second
    assert first == calls.caller_of(claims(), "203.0.113.7")


@pytest.mark.parametrize(
    ("other_claims", "other_ip"),
    [(claims(sid="s2"), "203.0.113.7"), (claims(role="admin"), "203.0.113.7"), (claims(), None)],
)
def test_another_session_role_or_address_gets_a_caller_of_its_own(
    other_claims: AccessClaims, other_ip: str | None
) -> None:
    mine = socket_caller(claims(), "203.0.113.7")
    other = socket_caller(other_claims, other_ip)
    assert other is not mine
    assert other == calls.caller_of(other_claims, other_ip)


def test_a_channel_name_parses_once_into_one_shared_channel_and_key() -> None:
    channel, name = parse_channel("public:lobby")
    assert channel == Channel.parse("public:lobby")
    assert name == "public:lobby"
    again = parse_channel("public:lobby")
    assert again[0] is channel
    assert again[1] is name


def test_a_bad_channel_name_is_refused_every_time() -> None:
    for _ in range(2):
        with pytest.raises(BadRequest, match="unknown channel kind"):
            parse_channel("nope:lobby")


@pytest.mark.parametrize(
    ("address", "canonical"),
    [("::ffff:10.0.0.5", "10.0.0.5"), ("2001:DB8::1", "2001:db8::1"), ("not an ip", "not an ip")],
)
def test_an_address_normalises_the_same_the_second_time(address: str, canonical: str) -> None:
    assert normalized(address) == canonical
    assert normalized(address) == canonical
