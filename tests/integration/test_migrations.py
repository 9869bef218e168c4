"""Migrations: the hand-written ones match the models, and go down and up again."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection

import handlers.models  # noqa: F401 - every table on the metadata
import migrations
from handlers.db import Base, create_engine
from tests.support.services import Databases


def differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


class TestMigrations:
    async def test_the_migrated_schema_matches_the_models(self, database_url: str) -> None:
        engine = create_engine(database_url, pool_size=1, max_overflow=0)
        try:
            async with engine.connect() as connection:
                assert await connection.run_sync(differences) == []
        finally:
            await engine.dispose()

    async def test_accounts_go_down_to_the_foundation_and_up_again(
        self, databases: Databases
    ) -> None:
        url = await databases.create(from_template=False)
        try:
            await migrations.upgrade(url)
            await migrations.downgrade(url, "0001")
            engine = create_engine(url, pool_size=1, max_overflow=0)
            try:
                async with engine.connect() as connection:
                    users = await connection.scalar(text("SELECT to_regclass('users')"))
            finally:
                await engine.dispose()
            await migrations.upgrade(url)
            assert users is None
        finally:
            await databases.drop(url)
