"""The client's IP address, for rate limits and the session record.

The socket's peer address, unless that peer is a trusted proxy (setting
``HUBBUB_TRUSTED_PROXIES``): then ``X-Forwarded-For`` is read from the right, skipping
trusted proxies, and the first address that is not one is the client. Entries left of
it were written by the client itself and prove nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from aiohttp import web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class ClientIp:
    trusted: tuple[Network, ...] = ()

    @classmethod
    def trusting(cls, proxies: Iterable[str]) -> ClientIp:
        return cls(tuple(ipaddress.ip_network(item, strict=False) for item in proxies))

    def is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted)

    def of(self, request: web.Request) -> str | None:
        remote = request.remote
        if not self.trusted or remote is None or not self.is_trusted(remote):
            return remote
        hops = [
            hop.strip()
            for header in request.headers.getall("X-Forwarded-For", [])
            for hop in header.split(",")
            if hop.strip()
        ]
        for hop in reversed(hops):
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                return remote  # a malformed chain: believe only what we saw
            if not self.is_trusted(hop):
                return hop
        return hops[0] if hops else remote
