"""Migration 0010 gives existing resources order keys: per (workspace, status), in the
order they were created (then by id), the keys ``generateKeyBetween(previous, null)``
makes one after another — so the board shows them as before and the browser's library
can put new cards between them."""

from __future__ import annotations

import asyncpg

import migrations
from handlers.resources.positions import after
from tests.support.services import Databases, asyncpg_dsn


async def test_existing_resources_get_keys_per_column_in_created_order(
    databases: Databases,
) -> None:
    url = await databases.create(from_template=False)
    await migrations.upgrade(url, "0009")
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        one, two = [
            await conn.fetchval(
                "INSERT INTO workspaces (id, name) VALUES (gen_random_uuid(), $1) RETURNING id", n
            )
            for n in ("one", "two")
        ]
        insert = (
            "INSERT INTO resources (id, workspace_id, kind, title, status, created_at)"
            " VALUES (gen_random_uuid(), $1, 'task', $2, $3,"
            " now() - make_interval(secs => $4)) RETURNING id"
        )
        # 70 in one column (past a0..az into b00..), created out of insertion order.
        todo = {
            await conn.fetchval(insert, one, f"t{i}", "todo", float(1000 - (i * 7) % 70)): i
            for i in range(70)
        }
        done = await conn.fetchval(insert, one, "d", "done", 5.0)
        other = await conn.fetchval(insert, two, "o", "todo", 5.0)
        await migrations.upgrade(url)
        rows = await conn.fetch(
            "SELECT id, position FROM resources WHERE workspace_id = $1 AND status = 'todo'"
            " ORDER BY created_at, id",
            one,
        )
        keys: list[str | None] = [None]
        for _ in rows:
            keys.append(after(keys[-1]))
        assert [r["position"] for r in rows] == keys[1:]
        assert keys[-1] == "b07"  # 62 one-digit keys, then b00..b07
        assert {r["id"] for r in rows} == set(todo)
        ordered = await conn.fetch(
            "SELECT id FROM resources WHERE workspace_id = $1 AND status = 'todo'"
            " ORDER BY position, id",
            one,
        )
        assert [r["id"] for r in ordered] == [r["id"] for r in rows]
        firsts = await conn.fetch(
            "SELECT position FROM resources WHERE id = ANY($1::uuid[])", [done, other]
        )
        assert [r["position"] for r in firsts] == ["a0", "a0"]
        await migrations.downgrade(url, "0009")
        columns = await conn.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'resources'"
        )
        assert "position" not in {r["column_name"] for r in columns}
    finally:
        await conn.close()
