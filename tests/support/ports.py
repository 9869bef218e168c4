"""Ports for servers started later: ``hubbub up``'s hubs and their admin listeners, a
``hubbub serve``, a hub's admin listener. Chosen here by the tests, and by the benchmarks
and the chaos runs (which import this module too), for every server whose port is
picked before it binds."""

from __future__ import annotations

import random
from pathlib import Path

from cli.embedded.process import free_port, port_is_free
from cli.supervisor import ADMIN_PORT_OFFSET as ADMIN_OFFSET  # each hub's admin: port + 1000

__all__ = ["ADMIN_OFFSET", "ephemeral_ports_start", "quiet_port"]

LOWEST = 10_000  # quiet ports are picked from here up to the ephemeral range
TRIES = 200


def ephemeral_ports_start() -> int | None:
    """The first of the kernel's ephemeral ports (where an outgoing connection's local
    port comes from), or None where the kernel does not say."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def quiet_port(hubs: int = 2) -> int:
    """A first hub port, free with its next ones and their admin ports, below the kernel's
    range of ephemeral ports: an outgoing connection (to PostgreSQL, NATS, Redis) takes
    its local port from that range and could take one of these between now and the
    moment the server binds it.

    Where that range leaves no room below it (it starts near ``LOWEST``), or none of
    the room is free: a port the kernel hands out (``free_port``, from that range), free
    with its next ones and their admin ports too."""
    pick = random.Random()
    lowest = ephemeral_ports_start()
    if lowest is not None:
        wanted = range(LOWEST, lowest - ADMIN_OFFSET - hubs)
        for _ in range(TRIES if wanted else 0):
            port = pick.choice(wanted)
            if _free_with_admin_ports(port, hubs):
                return port
    for _ in range(TRIES):
        port = free_port()
        if _free_with_admin_ports(port, hubs):
            return port
    raise RuntimeError(f"no {hubs} consecutive free ports with their admin ports free too")


def _free_with_admin_ports(port: int, hubs: int) -> bool:
    """Are ``port`` and its ``hubs - 1`` next ones free, and each one's admin port?"""
    ports = range(port, port + hubs)
    return ports[-1] + ADMIN_OFFSET <= 65_535 and all(
        port_is_free(p) and port_is_free(p + ADMIN_OFFSET) for p in ports
    )
