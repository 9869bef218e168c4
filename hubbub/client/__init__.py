"""A Python client for Hubbub's WebSocket protocol (for backends, tests, benchmarks)."""

from hubbub.client.client import (
    ClientClosed,
    ConnectionState,
    HubbubClient,
    Publication,
    RemoteError,
    RpcTimeout,
    Subscription,
)

__all__ = [
    "ClientClosed",
    "ConnectionState",
    "HubbubClient",
    "Publication",
    "RemoteError",
    "RpcTimeout",
    "Subscription",
]
