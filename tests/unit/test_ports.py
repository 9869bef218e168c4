"""`port_is_free` answers as a server's bind would: a listener takes a port, the
TIME_WAIT connections a stopped server leaves behind do not. `quiet_port` picks a first
hub port free with its next ones and their admin ports, below the kernel's range of
ephemeral ports where it leaves room."""

from __future__ import annotations

import socket

import pytest

from cli.embedded.process import free_port, port_is_free
from tests.support import ports
from tests.support.ports import ADMIN_OFFSET, LOWEST, ephemeral_ports_start, quiet_port


def _listener(port: int) -> socket.socket:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen()
    return server


def test_a_listening_port_is_taken() -> None:
    port = free_port()
    with _listener(port):
        assert not port_is_free(port)
    assert port_is_free(port)


def test_a_port_whose_server_closed_its_connections_first_is_free() -> None:
    """The server side closes first (as an HTTP server does after `Connection: close`),
    so its port keeps a TIME_WAIT connection for a minute after the server is gone."""
    port = free_port()
    with _listener(port) as server:
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()
        client.recv(1)  # the server's FIN has arrived
        client.close()
    states = _tcp_states(port)
    assert "06" in states, states  # TIME_WAIT on the server's port: the case that matters
    assert port_is_free(port)


def _tcp_states(port: int) -> set[str]:
    """The states (hex, as /proc shows them) of the IPv4 connections with ``port`` as
    their local port."""
    with open("/proc/net/tcp") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    return {row[3] for row in rows if int(row[1].split(":")[1], 16) == port}


def _assert_free_with_admin_ports(port: int, hubs: int) -> None:
    ports = [port + i for i in range(hubs)]
    admin = [p + ADMIN_OFFSET for p in ports]
    assert all(port_is_free(p) for p in ports + admin), (ports, admin)


def test_quiet_ports_are_free_with_their_admin_ports_and_below_the_ephemeral_range() -> None:
    """What `hubbub up`'s hubs get in the tests, benchmarks and chaos runs: no outgoing
    connection can take one of these ports before the hub binds it — where the kernel's
    range of ephemeral ports leaves room below it; else they are the kernel's own."""
    port = quiet_port(2)
    _assert_free_with_admin_ports(port, 2)
    lowest = ephemeral_ports_start()
    if lowest is not None and lowest - ADMIN_OFFSET - 2 > LOWEST:
        assert port + 1 + ADMIN_OFFSET < lowest, (port, lowest)
    else:  # no room below the range: a port free_port handed out, from the range
        assert lowest is None or port >= lowest, (port, lowest)


def test_below_a_range_of_ephemeral_ports_that_leaves_room(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ports, "ephemeral_ports_start", lambda: 40_000)
    port = quiet_port(3)
    _assert_free_with_admin_ports(port, 3)
    assert port >= LOWEST
    assert port + 2 + ADMIN_OFFSET < 40_000


def test_with_no_room_below_the_range_a_port_of_the_kernels_is_checked_with_its_neighbours(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The kernel's range starts at 10,500 (no room for a port and its admin port below
    it): ports the kernel hands out, each taken only if its next one and both admin ports
    are free too."""
    monkeypatch.setattr(ports, "ephemeral_ports_start", lambda: LOWEST + 500)
    for _ in range(100):  # a port the kernel could hand out whose next one's admin port is taken
        taken = free_port()
        first = taken - ADMIN_OFFSET - 1
        if first > 1024 and all(port_is_free(p) for p in (first, first + 1, first + ADMIN_OFFSET)):
            break
    else:
        pytest.fail("no free port 1001 below a free port")
    handed = [first]
    monkeypatch.setattr(ports, "free_port", lambda: handed.pop() if handed else free_port())
    with _listener(taken):
        port = quiet_port(2)
        assert port != first
        _assert_free_with_admin_ports(port, 2)
