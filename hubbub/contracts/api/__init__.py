"""The catalog of every public operation. Domain modules add theirs here."""

from __future__ import annotations

from hubbub.contracts.api import auth, system, users
from hubbub.contracts.operations import Catalog


def default_catalog() -> Catalog:
    return Catalog().extend(system.catalog).extend(auth.catalog).extend(users.catalog)


__all__ = ["auth", "default_catalog", "system", "users"]
