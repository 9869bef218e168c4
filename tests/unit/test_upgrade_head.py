"""The upgrade heads the hub reads itself (``hub/ws/upgrade_head.py``): a plain, whole
``GET /ws`` upgrade is taken; anything unusual is left to aiohttp's parser (None)."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from hub.ws.endpoint import subscribe_names
from hub.ws.upgrade_head import MAX_HEAD_BYTES, parse_upgrade_head, switching_protocols

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455's example key


def head(
    target: str = "/ws", *extra: str, drop: tuple[str, ...] = (), version: str = "HTTP/1.1"
) -> bytes:
    fields = {
        "Host": "hub.example:8080",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": KEY,
        "Sec-WebSocket-Protocol": "hubbub.v1.json",
    }
    lines = [f"GET {target} {version}"]
    lines += [f"{k}: {v}" for k, v in fields.items() if k not in drop]
    lines += list(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def test_a_plain_upgrade_is_read_with_its_query_headers_and_length() -> None:
    data = head("/ws?subscribe=public%3Aa&subscribe=b", "Authorization: Bearer t.o.k")
    parsed = parse_upgrade_head(data + b"\x81\x00")  # a frame right behind it
    assert parsed is not None
    assert parsed.query_string == "subscribe=public%3Aa&subscribe=b"  # raw: decoded once, later
    assert parsed.headers["authorization"] == "Bearer t.o.k"
    assert parsed.host == "hub.example:8080"
    assert parsed.key == KEY
    assert parsed.length == len(data)


def test_browsers_connection_lists_and_case_are_taken() -> None:
    data = head("/ws", "Origin: https://app.example", drop=("Connection", "Upgrade")).replace(
        b"\r\n\r\n", b"\r\nConnection: keep-alive, Upgrade\r\nUpgrade: WebSocket\r\n\r\n"
    )
    assert parse_upgrade_head(data) is not None


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(head("/api/v1/health"), id="another path"),
        pytest.param(head("/wsx"), id="a longer path"),
        pytest.param(head("/ws/"), id="a sub-path"),
        pytest.param(head("/ws#x"), id="a fragment"),
        pytest.param(head("/ws?a b"), id="a space in the target"),
        pytest.param(head(version="HTTP/1.0"), id="HTTP/1.0"),
        pytest.param(head().replace(b"GET", b"POST", 1), id="not a GET"),
        pytest.param(head(drop=("Sec-WebSocket-Key",)), id="no key"),
        pytest.param(head(drop=("Host",)), id="no Host"),
        pytest.param(head().replace(KEY.encode(), b"c2hvcnQ="), id="a key not of 16 bytes"),
        pytest.param(head().replace(KEY.encode(), b"not base64!"), id="a key not base64"),
        pytest.param(head(drop=("Upgrade",)), id="no Upgrade"),
        pytest.param(head().replace(b"Upgrade\r\n", b"keep-alive\r\n"), id="no upgrade token"),
        pytest.param(head().replace(b"Version: 13", b"Version: 8"), id="another version"),
        pytest.param(head("/ws", "Content-Length: 5"), id="a body's length"),
        pytest.param(head("/ws", "Transfer-Encoding: chunked"), id="a chunked body"),
        pytest.param(head("/ws", "Expect: nope"), id="an expectation"),
        pytest.param(head("/ws", "Host: other.example"), id="two Hosts"),
        pytest.param(head("/ws", "Upgrade: websocket"), id="two Upgrades"),
        pytest.param(head("/ws", "User-Agent: a", "user-agent: b"), id="two User-Agents"),
        pytest.param(head("/ws", "X-A : b"), id="a space before the colon"),
        pytest.param(head("/ws", "X-A: b", " folded"), id="a folded line"),
        pytest.param(head("/ws", "X-A: b\x01"), id="a control byte"),
        pytest.param(head("/ws", "X-A: caf\xe9"), id="a byte past ASCII"),
        pytest.param(head("/ws", "no colon"), id="a line without a colon"),
        pytest.param(head()[:-2], id="a head not ended yet"),
        pytest.param(head("/ws", "X-Big: " + "a" * MAX_HEAD_BYTES), id="a head too long"),
        pytest.param(head("/ws", *[f"X-{i}: v" for i in range(60)]), id="too many headers"),
    ],
)
def test_anything_else_is_left_to_aiohttp(data: bytes) -> None:
    assert parse_upgrade_head(data) is None


def test_the_101_accepts_the_key_as_rfc_6455_computes_it() -> None:
    answer = switching_protocols(KEY, "hubbub.v1.json")
    assert answer.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in answer
    assert b"\r\nSec-WebSocket-Protocol: hubbub.v1.json\r\n" in answer
    assert answer.endswith(b"\r\n\r\n")


@pytest.mark.parametrize(
    "query",
    [
        "",
        "subscribe=public%3Aa",
        "a=1&subscribe=x&subscribe=y+z",
        "subscribe",
        "&&subscribe=&x",
        "sub%73cribe=q",
        "subscribe=%zz",
        "subscribe=a=b",
        "x=1;subscribe=2",
        "+subscribe=1",
        "subscribe=%F0%9F%98%80",
        "subscribe=%ff",
    ],
)
def test_the_subscribe_names_of_a_query_are_what_parse_qsl_reads(query: str) -> None:
    expected = [v for k, v in parse_qsl(query, keep_blank_values=True) if k == "subscribe"]
    assert subscribe_names(query) == expected
