"""The catalog of every public operation. Domain modules add theirs here."""

from __future__ import annotations

from hubbub.contracts.api import apikeys, auth, channels, system, users
from hubbub.contracts.operations import Catalog


def default_catalog() -> Catalog:
    # channels.catalog (channels.authorize) joins once the workspace domain answers it;
    # until then the tests' catalog carries it, with a stand-in handler.
    return (
        Catalog()
        .extend(system.catalog)
        .extend(auth.catalog)
        .extend(users.catalog)
        .extend(apikeys.catalog)
    )


__all__ = ["apikeys", "auth", "channels", "default_catalog", "system", "users"]
