"""The client's IP: the peer address, or X-Forwarded-For only through trusted proxies."""

from __future__ import annotations

from unittest.mock import Mock

from aiohttp.test_utils import make_mocked_request

from hub.client_ip import ClientIp


def request(remote: str, forwarded: str | None = None) -> Mock:
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    req = make_mocked_request("GET", "/", headers=headers)
    mocked = Mock(wraps=req)
    mocked.remote = remote
    mocked.headers = req.headers
    return mocked


class TestClientIp:
    def test_without_trusted_proxies_the_peer_is_the_client(self) -> None:
        assert ClientIp().of(request("10.0.0.5", "1.2.3.4")) == "10.0.0.5"

    def test_an_untrusted_peer_cannot_claim_another_address(self) -> None:
        resolver = ClientIp.trusting(["10.0.0.0/8"])
        assert resolver.of(request("203.0.113.9", "1.2.3.4")) == "203.0.113.9"

    def test_a_trusted_proxy_names_the_client(self) -> None:
        resolver = ClientIp.trusting(["10.0.0.0/8"])
        assert resolver.of(request("10.0.0.5", "198.51.100.7")) == "198.51.100.7"

    def test_the_rightmost_untrusted_hop_wins_over_spoofed_entries(self) -> None:
        """The client wrote the left entries itself; only what proxies appended counts."""
        resolver = ClientIp.trusting(["10.0.0.0/8"])
        chain = "6.6.6.6, 198.51.100.7, 10.0.0.9"
        assert resolver.of(request("10.0.0.5", chain)) == "198.51.100.7"

    def test_a_malformed_chain_falls_back_to_the_peer(self) -> None:
        resolver = ClientIp.trusting(["10.0.0.0/8"])
        assert resolver.of(request("10.0.0.5", "not-an-ip")) == "10.0.0.5"

    def test_a_trusted_peer_without_the_header_is_the_client(self) -> None:
        assert ClientIp.trusting(["127.0.0.1"]).of(request("127.0.0.1")) == "127.0.0.1"

    def test_an_ipv4_mapped_proxy_matches_its_ipv4_network(self) -> None:
        """A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d."""
        resolver = ClientIp.trusting(["10.0.0.0/8"])
        assert resolver.of(request("::ffff:10.0.0.5", "198.51.100.7")) == "198.51.100.7"

    def test_mapped_addresses_are_reported_as_ipv4(self) -> None:
        assert ClientIp().of(request("::ffff:203.0.113.9")) == "203.0.113.9"
        resolver = ClientIp.trusting(["10.0.0.0/8"])
        assert resolver.of(request("10.0.0.5", "::ffff:198.51.100.7")) == "198.51.100.7"
