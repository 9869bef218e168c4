"""The catalog of every public operation. Domain modules add theirs here."""

from __future__ import annotations

from hubbub.contracts.api import channels, system
from hubbub.contracts.operations import Catalog


def default_catalog() -> Catalog:
    return Catalog().extend(system.catalog).extend(channels.catalog)


__all__ = ["channels", "default_catalog", "system"]
