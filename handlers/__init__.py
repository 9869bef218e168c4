"""The domain: models, and one handler function per operation. No HTTP, no sockets, no NATS."""

from __future__ import annotations

from handlers.registry import Registry


def default_registry() -> Registry:
    from handlers import accounts, apikeys, resources, system, workspaces

    registry = Registry().extend(system.registry).extend(accounts.registry)
    registry.extend(apikeys.registry)
    return registry.extend(workspaces.registry).extend(resources.registry)
