"""Which browser origins a hub lets open a socket (hub/ws/endpoint.py) and use the
session cookie (hub/session_cookie.py): the one rule of hub/origins.py."""

from __future__ import annotations

import pytest

from hub.ws import endpoint
from hubbub.config import Settings


def upgrade(host: str, origin: str | None, **settings: object) -> tuple[Settings, str, str | None]:
    """What ``socket_origin_allowed`` reads of an upgrade to a hub with ``settings``: its
    ``Host`` and its ``Origin``."""
    return Settings(**settings), host, origin  # type: ignore[arg-type]


class TestSockets:
    def test_a_client_without_an_origin_is_no_browser_and_passes(self) -> None:
        assert endpoint.socket_origin_allowed(*upgrade("hub.example:8080", None))

    @pytest.mark.parametrize(
        ("host", "origin"),
        [
            ("hub.example:8080", "http://hub.example:8080"),
            ("hub.example:8080", "https://hub.example:8080"),  # TLS ended in front
            ("hub.example", "https://hub.example"),
            ("hub.example", "http://hub.example"),
        ],
    )
    def test_the_requests_own_host_and_port_pass(self, host: str, origin: str) -> None:
        assert endpoint.socket_origin_allowed(*upgrade(host, origin))

    @pytest.mark.parametrize(
        ("host", "origin"),
        [
            ("hub.example:8080", "http://hub.example"),  # the port a proxy dropped
            ("hub.example:8080", "http://evil.example:8080"),
            ("hub.example", "null"),
            ("hub.example", "http://[::1"),
        ],
    )
    def test_another_origin_is_refused(self, host: str, origin: str) -> None:
        assert not endpoint.socket_origin_allowed(*upgrade(host, origin))

    def test_the_public_urls_origin_passes_whatever_host_the_proxy_sends(self) -> None:
        """A proxy that passes the hub its own address as Host (nginx's $proxy_host)."""
        allowed = upgrade("10.0.0.5:8080", "https://app.example", public_url="https://app.example/")
        assert endpoint.socket_origin_allowed(*allowed)
        other = upgrade("10.0.0.5:8080", "https://else.example", public_url="https://app.example")
        assert not endpoint.socket_origin_allowed(*other)

    @pytest.mark.parametrize(
        ("public_url", "origin"),
        [
            ("https://app.example:443", "https://app.example"),
            ("https://app.example", "https://app.example:443"),
            ("http://APP.example/", "http://app.example"),
        ],
    )
    def test_the_public_urls_default_port_may_be_written_out_or_not(
        self, public_url: str, origin: str
    ) -> None:
        assert endpoint.socket_origin_allowed(
            *upgrade("10.0.0.5:8080", origin, public_url=public_url)
        )
        other_port = upgrade("10.0.0.5:8080", "https://app.example:8443", public_url=public_url)
        assert not endpoint.socket_origin_allowed(*other_port)

    def test_a_cors_origin_passes(self) -> None:
        allowed = upgrade(
            "hub.example", "http://localhost:3000", cors_origins="http://localhost:3000"
        )
        assert endpoint.socket_origin_allowed(*allowed)
