"""Which failures show PostgreSQL to be away (``handlers.db.postgres_outage``)."""

from __future__ import annotations

import asyncpg
import pytest

from handlers.db import postgres_outage
from hubbub.dependencies import POSTGRES


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.InterfaceError("connection is closed"),
        # what asyncpg raises on a pooled connection the server shut down under it
        asyncpg.InternalClientError(
            "cannot switch to state 12; another operation (2) is in progress"
        ),
    ],
)
def test_a_server_gone_away_is_a_postgres_outage(exc: Exception) -> None:
    outage = postgres_outage(exc)
    assert outage is not None
    assert outage.dependency == POSTGRES


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.InternalClientError("unexpected message type"),
        asyncpg.UniqueViolationError("duplicate key"),
        ValueError("a bug"),
    ],
)
def test_other_failures_are_not(exc: Exception) -> None:
    assert postgres_outage(exc) is None
