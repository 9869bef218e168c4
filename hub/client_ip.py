"""The client's IP address, for rate limits and the session record.

The socket's peer address, unless that peer is a trusted proxy (setting
``HUBBUB_TRUSTED_PROXIES``): then ``X-Forwarded-For`` is read from the right, skipping
trusted proxies, and the first address that is not one is the client. Entries left of
it were written by the client itself and prove nothing.

An IPv4 address seen through a dual-stack socket (``::ffff:10.0.0.5``) is the IPv4
address: it matches IPv4 trusted networks and is reported in its IPv4 form, so one
client has one spelling in rate-limit keys and session records.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class ClientIp:
    trusted: tuple[Network, ...] = ()

    @classmethod
    def trusting(cls, proxies: Iterable[str]) -> ClientIp:
        return cls(tuple(ipaddress.ip_network(item, strict=False) for item in proxies))

    def is_trusted(self, address: str) -> bool:
        ip = _parse(address)
        return ip is not None and any(ip in network for network in self.trusted)

    def of(self, request: web.Request) -> str | None:
        return self.of_peer(request.remote, request.headers)

    def of_peer(
        self, remote: str | None, headers: CIMultiDictProxy[str] | CIMultiDict[str]
    ) -> str | None:
        """``of`` a request that came from ``remote`` (its TCP peer) with ``headers``."""
        if remote is not None:
            remote = normalized(remote)
        if not self.trusted or remote is None or not self.is_trusted(remote):
            return remote
        hops = [
            hop.strip()
            for header in headers.getall("X-Forwarded-For", [])
            for hop in header.split(",")
            if hop.strip()
        ]
        for hop in reversed(hops):
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                return remote  # a malformed chain: believe only what we saw
            if not self.is_trusted(hop):
                return normalized(hop)
        return normalized(hops[0]) if hops else remote


def _parse(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


NORMALIZED_CACHE_SIZE = 4096  # addresses whose canonical text is remembered


def normalized(address: str) -> str:
    """The canonical text of an address (IPv4-mapped IPv6 as IPv4); other text as given.

    Remembered per address text (a reconnect storm comes from few addresses, and every
    socket asks): the answer depends on the text alone. When the cache is full it starts
    over, so a stream of distinct addresses keeps at most its size."""
    known = _normalized.get(address)
    if known is not None:
        return known
    ip = _parse(address)
    canonical = address if ip is None else str(ip)
    if len(_normalized) >= NORMALIZED_CACHE_SIZE:
        _normalized.clear()
    _normalized[address] = canonical
    return canonical


_normalized: dict[str, str] = {}
