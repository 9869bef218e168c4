"""Migrations up, down and up again, on a database of their own."""

from __future__ import annotations

import asyncpg
import pytest

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


async def schema(url: str) -> set[tuple[str, ...]]:
    """Tables, columns, constraints and indexes with their definitions: what a revision
    may change."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        columns = await conn.fetch(
            "SELECT table_name, column_name, data_type, is_nullable FROM"
            " information_schema.columns WHERE table_schema = 'public'"
        )
        constraints = await conn.fetch(
            "SELECT conname, pg_get_constraintdef(c.oid) AS definition FROM pg_constraint c"
            " JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = 'public'"
        )
        indexes = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
        )
    finally:
        await conn.close()
    return (
        {("table", t) for t in await tables(url)}
        | {("column", *map(str, r.values())) for r in columns}
        | {("constraint", r["conname"], r["definition"]) for r in constraints}
        | {("index", r["indexname"], r["indexdef"]) for r in indexes}
    )


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

    async def test_the_migrations_build_the_models_indexes_as_written(
        self, databases: Databases
    ) -> None:
        """Each index as PostgreSQL has it (columns, expressions, partial predicates),
        made by the migrations and by the models: autogenerate compares less."""
        from sqlalchemy.ext.asyncio import create_async_engine

        migrated = await databases.create()
        modelled = await databases.create(from_template=False)
        engine = create_async_engine(modelled)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(Base.metadata.create_all)
        finally:
            await engine.dispose()

        def indexes(schema: set[tuple[str, ...]]) -> set[tuple[str, ...]]:
            return {item for item in schema if item[0] == "index" and "alembic" not in item[1]}

        assert indexes(await schema(migrated)) == indexes(await schema(modelled))

    async def test_each_revision_goes_down_one_step_and_up_again(
        self, databases: Databases
    ) -> None:
        """Down from head to every earlier revision in turn: each downgrade changes the
        schema (what its revision added or changed), and upgrading again restores all
        of it."""
        from alembic.script import ScriptDirectory

        url = await databases.create(from_template=False)
        await migrations.upgrade(url)
        full = await schema(url)
        script = ScriptDirectory.from_config(migrations.alembic_config(url))
        revisions = [r.revision for r in script.walk_revisions()]  # head first
        for previous in [*revisions[1:], "base"]:
            before = await schema(url)
            await migrations.downgrade(url, previous)
            assert await schema(url) != before, f"downgrading to {previous} changed nothing"
        assert await tables(url) == {"alembic_version"}
        await migrations.upgrade(url)
        assert await schema(url) == full

    async def test_revoked_invitations_need_0005_and_become_replaced_without_it(
        self, databases: Databases
    ) -> None:
        """0005 lets an invitation be ``revoked``; going back to 0004 turns those rows
        into ``replaced`` (also dead), which 0004's constraint allows."""
        url = await databases.create(from_template=False)
        await migrations.upgrade(url)
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            workspace = await conn.fetchval(
                "INSERT INTO workspaces (id, name) VALUES (gen_random_uuid(), 'w') RETURNING id"
            )
            insert = (
                "INSERT INTO workspace_invitations (id, workspace_id, email, role, status,"
                " token_hash, expires_at) VALUES (gen_random_uuid(), $1, $2, 'member', $3,"
                " $4, now())"
            )
            await conn.execute(insert, workspace, "a@example.com", "revoked", b"a" * 32)
            await migrations.downgrade(url, "0004")
            assert await conn.fetchval("SELECT status FROM workspace_invitations") == "replaced"
            with pytest.raises(asyncpg.CheckViolationError):
                await conn.execute(insert, workspace, "b@example.com", "revoked", b"b" * 32)
        finally:
            await conn.close()
