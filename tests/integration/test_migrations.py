"""Migrations up, down and up again, on a database of their own."""

from __future__ import annotations

import asyncpg

import migrations
from handlers.db import Base
from tests.support.services import Databases, asyncpg_dsn


async def tables(url: str) -> set[str]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r["tablename"] for r in rows}
    finally:
        await conn.close()


class TestMigrations:
    async def test_upgrade_creates_every_model_table_and_is_idempotent(
        self, databases: Databases
    ) -> None:
        url = await databases.create(from_template=False)
        await migrations.upgrade(url)
        await migrations.upgrade(url)  # a second run changes nothing and does not fail
        assert set(Base.metadata.tables) | {"alembic_version"} == await tables(url)

    async def test_downgrade_to_base_removes_everything_and_upgrade_restores_it(
        self, databases: Databases
    ) -> None:
        url = await databases.create(from_template=False)
        await migrations.upgrade(url)
        await migrations.downgrade(url, "base")
        assert await tables(url) == {"alembic_version"}
        await migrations.upgrade(url)
        assert set(Base.metadata.tables) <= await tables(url)

    async def test_the_models_and_the_migrations_agree(self, databases: Databases) -> None:
        """Autogenerate against a migrated database finds nothing to do."""
        from alembic.autogenerate import compare_metadata
        from alembic.migration import MigrationContext
        from sqlalchemy.ext.asyncio import create_async_engine

        url = await databases.create()
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                diff = await conn.run_sync(
                    lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
                )
        finally:
            await engine.dispose()
        assert diff == []

    async def test_each_revision_goes_down_one_step_and_up_again(
        self, databases: Databases
    ) -> None:
        """Down from head to every earlier revision in turn: each downgrade removes
        exactly the tables its revision added, and upgrading again restores them."""
        from alembic.script import ScriptDirectory

        url = await databases.create(from_template=False)
        await migrations.upgrade(url)
        full = await tables(url)
        script = ScriptDirectory.from_config(migrations.alembic_config(url))
        revisions = [r.revision for r in script.walk_revisions()]  # head first
        for previous in [*revisions[1:], "base"]:
            before = await tables(url)
            await migrations.downgrade(url, previous)
            after = await tables(url)
            assert after < before, f"downgrading to {previous} removed no table"
        assert await tables(url) == {"alembic_version"}
        await migrations.upgrade(url)
        assert await tables(url) == full
