"""Accounts: users, sessions and their tokens, passwords, password reset, email
verification, roles."""

from __future__ import annotations

from handlers.accounts import admin, profile, reset, signin, verification
from handlers.registry import Registry

registry = Registry().extend(signin.registry).extend(reset.registry)
registry.extend(profile.registry).extend(admin.registry).extend(verification.registry)

__all__ = ["registry"]
