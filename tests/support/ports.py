"""Ports for servers started later: ``hubbub up``'s hubs and their admin listeners, a
``hubbub serve``, a hub's admin listener. Chosen here by the tests, and by the benchmarks
and the chaos runs (which import this module too), for every server whose port is
picked before it binds."""

from __future__ import annotations

import random
from pathlib import Path

from cli.embedded.process import free_port, port_is_free
from cli.supervisor import ADMIN_PORT_OFFSET as ADMIN_OFFSET  # each hub's admin: port + 1000

__all__ = ["ADMIN_OFFSET", "quiet_port"]


def quiet_port(hubs: int = 2) -> int:
    """A first hub port, free with its next ones and their admin ports, below the kernel's
    range of ephemeral ports: an outgoing connection (to PostgreSQL, NATS, Redis) takes
    its local port from that range and could take one of these between now and the
    moment the server binds it. (``free_port`` hands out ports from that range.)"""
    try:
        lowest = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return free_port()
    wanted = range(10_000, lowest - ADMIN_OFFSET - hubs)
    if len(wanted) <= 0:
        return free_port()
    pick = random.Random()
    for _ in range(200):
        port = pick.choice(wanted)
        ports = [port + i for i in range(hubs)]
        if all(port_is_free(p) and port_is_free(p + ADMIN_OFFSET) for p in ports):
            return port
    return free_port()
