"""`port_is_free` answers as a server's bind would: a listener takes a port, the
TIME_WAIT connections a stopped server leaves behind do not."""

from __future__ import annotations

import socket
from pathlib import Path

from cli.embedded.process import free_port, port_is_free
from tests.support.ports import ADMIN_OFFSET, quiet_port


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


def test_a_quiet_port_and_its_admin_ports_are_free_and_below_the_ephemeral_range() -> None:
    """What `hubbub up`'s hubs get in the tests, benchmarks and chaos runs: no outgoing
    connection can take one of these ports before the hub binds it."""
    lowest = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    port = quiet_port(2)
    ports = [port, port + 1, port + ADMIN_OFFSET, port + 1 + ADMIN_OFFSET]
    assert max(ports) < lowest, (ports, lowest)
    assert all(port_is_free(p) for p in ports)
