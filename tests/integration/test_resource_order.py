"""Card order kept on the server: ``position`` within a column, moves, the listing's
order and its cursors, bad keys; and a busy workspace: concurrent creates into one
workspace, across two workers, each applied once with its event published once."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from nats.aio.client import Client as NATS
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.resources.models import Resource
from hubbub.config import Settings
from tests.integration.test_resources import workspace_events
from tests.support.waiting import eventually
from tests.support.workspaces import Domain, Person
from workers.app import RunningWorker


@pytest.fixture
def domain(hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]) -> Domain:
    return Domain(hub_client, db)


async def listing(domain: Domain, ws: str, who: Person, **params: Any) -> list[dict[str, Any]]:
    page = await domain.call("GET", f"/workspaces/{ws}/resources", who, params=params, expect=200)
    items: list[dict[str, Any]] = page["items"]
    return items


def board_order(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(items, key=lambda r: (r["position"].encode(), r["id"]))


class TestPositions:
    async def test_new_cards_go_after_the_last_of_their_column(self, domain: Domain) -> None:
        ann = await domain.person("ann")
        ws = (await domain.workspace(ann))["id"]
        todo = [await domain.resource(ws, ann, status="todo") for _ in range(3)]
        done = await domain.resource(ws, ann, status="done")
        assert [r["position"] for r in todo] == ["a0", "a1", "a2"]
        assert done["position"] == "a0"  # a column of its own
        column = await listing(domain, ws, ann, status="todo")
        assert [r["id"] for r in column] == [r["id"] for r in todo]
        # A deleted card does not hold the end of its column.
        path = f"/workspaces/{ws}/resources/{todo[2]['id']}"
        await domain.call("DELETE", path, ann, expect=204)
        again = await domain.resource(ws, ann, status="todo")
        assert again["position"] == "a2"

    async def test_no_key_past_the_longest_is_made_after_a_column_ending_at_the_limit(
        self, domain: Domain
    ) -> None:
        """A column ending in the largest key there is (64 times ``z``) has no key after
        it: a create at its end is a conflict that says so, not a card whose key the API
        would refuse when sent back."""
        ann = await domain.person("ann")
        ws = (await domain.workspace(ann))["id"]
        await domain.resource(ws, ann, position="z" * 64)
        refused = await domain.call(
            "POST",
            f"/workspaces/{ws}/resources",
            ann,
            json={"kind": "task", "title": "one more"},
            expect=409,
        )
        assert refused["details"]["reason"] == "no_room"
        assert [len(r["position"]) for r in await listing(domain, ws, ann)] == [64]

    async def test_a_create_with_a_position_and_equal_keys_ordered_by_id(
        self, domain: Domain
    ) -> None:
        ann = await domain.person("ann")
        ws = (await domain.workspace(ann))["id"]
        first = await domain.resource(ws, ann, position="a1")
        ties = [await domain.resource(ws, ann, position="a0V") for _ in range(3)]
        top = await domain.resource(ws, ann, position="Zz")
        items = await listing(domain, ws, ann)
        expected = [top["id"], *sorted(t["id"] for t in ties), first["id"]]
        assert [r["id"] for r in items] == expected

    async def test_a_move_is_one_update_with_status_and_position(
        self, domain: Domain, nc: NATS, settings: Settings
    ) -> None:
        ann = await domain.person("ann")
        ws = (await domain.workspace(ann))["id"]
        a, b = [await domain.resource(ws, ann, status="todo") for _ in range(2)]
        c = await domain.resource(ws, ann, status="doing")  # a0 in "doing"
        path = f"/workspaces/{ws}/resources/{b['id']}"
        moved = await domain.call(
            "PATCH",
            path,
            ann,
            json={"status": "doing", "position": "Zz"},
            headers={"If-Match": '"1"'},
            expect=200,
        )
        assert (moved["status"], moved["position"], moved["version"]) == ("doing", "Zz", 2)
        doing = await listing(domain, ws, ann, status="doing")
        assert [r["id"] for r in doing] == [b["id"], c["id"]]
        assert [r["id"] for r in await listing(domain, ws, ann, status="todo")] == [a["id"]]
        # The version rule holds for moves: a move made against version 1 is refused.
        stale = await domain.call(
            "PATCH", path, ann, json={"position": "a5"}, headers={"If-Match": '"1"'}
        )
        assert stale.status == 412

        async def published() -> None:
            events = await workspace_events(nc, settings, ws)
            updated = [e["data"] for e in events if e["type"] == "resource.updated"]
            created = [e["data"] for e in events if e["type"] == "resource.created"]
            assert [(u["id"], u["status"], u["position"]) for u in updated] == [
                (b["id"], "doing", "Zz")
            ]
            assert {r["position"] for r in created} == {"a0", "a1"}

        await eventually(published)

    @pytest.mark.parametrize("sort_params", [{}, {"status": "todo"}, {"order": "desc"}])
    async def test_cursor_pages_walk_the_board_order_once(
        self,
        domain: Domain,
        db: async_sessionmaker[AsyncSession],
        sort_params: dict[str, str],
    ) -> None:
        ann = await domain.person("ann")
        ws = (await domain.workspace(ann))["id"]
        async with db() as session:
            for i in range(23):
                session.add(
                    Resource(
                        workspace_id=uuid.UUID(ws),
                        kind="task",
                        title=f"t{i}",
                        status=("todo", "done")[i % 2],
                        position=("a0", "a0V", "a1", "Zz")[i % 4],  # many equal keys
                    )
                )
            await session.commit()
        everything = await listing(domain, ws, ann, limit=100, **sort_params)
        seen: list[str] = []
        cursor = None
        for _ in range(30):
            params: dict[str, Any] = {"limit": "4", **sort_params}
            if cursor:
                params["cursor"] = cursor
            page = await domain.call(
                "GET", f"/workspaces/{ws}/resources", ann, params=params, expect=200
            )
            seen += [r["id"] for r in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        expected = board_order(everything)
        if sort_params.get("order") == "desc":
            expected.reverse()
        assert seen == [r["id"] for r in everything] == [r["id"] for r in expected]

    @pytest.mark.parametrize(
        "position", ["", "a0!", "a" * 65, "a00", "b0", "0a", "A" + "0" * 26, None]
    )
    async def test_a_bad_key_is_422(self, domain: Domain, position: str | None) -> None:
        ann = await domain.person("ann")
        ws = (await domain.workspace(ann))["id"]
        made = await domain.resource(ws, ann)
        problem = await domain.call(
            "PATCH",
            f"/workspaces/{ws}/resources/{made['id']}",
            ann,
            json={"position": position},
            expect=422,
        )
        assert problem["code"] == "validation_failed"
        if position is not None:
            problem = await domain.call(
                "POST",
                f"/workspaces/{ws}/resources",
                ann,
                json={"kind": "task", "title": "x", "position": position},
                expect=422,
            )
            assert problem["code"] == "validation_failed"


class TestBusyWorkspace:
    async def test_concurrent_creates_into_one_workspace_apply_once_with_one_event_each(
        self,
        domain: Domain,
        db: async_sessionmaker[AsyncSession],
        nc: NATS,
        settings: Settings,
        second_worker: RunningWorker,
    ) -> None:
        """60 creates at once, across two workers, each sent twice with its idempotency
        key: 60 rows, 60 answers naming them, 60 ``resource.created`` events."""
        ann = await domain.person("ann")
        ws = (await domain.workspace(ann))["id"]

        async def create(n: int) -> Any:
            return await domain.call(
                "POST",
                f"/workspaces/{ws}/resources",
                ann,
                json={"kind": "task", "title": f"card {n}", "status": ("todo", "done")[n % 2]},
                headers={"Idempotency-Key": f"busy-{n}"},
            )

        responses = await asyncio.gather(*(create(n % 60) for n in range(120)))
        assert sorted({r.status for r in responses}) == [201]
        bodies = [await r.json() for r in responses]
        by_key: dict[str, set[str]] = {}
        for body in bodies:
            by_key.setdefault(body["title"], set()).add(body["id"])
        assert len(by_key) == 60
        assert all(len(ids) == 1 for ids in by_key.values())
        created = {body["id"] for body in bodies}
        async with db() as session:
            rows = await session.scalar(
                select(func.count())
                .select_from(Resource)
                .where(Resource.workspace_id == uuid.UUID(ws))
            )
        assert rows == 60

        async def every_event_once() -> None:
            events = await workspace_events(nc, settings, ws)
            ids = [e["data"]["id"] for e in events if e["type"] == "resource.created"]
            assert sorted(ids) == sorted(created)

        await eventually(every_event_once)
        items = await listing(domain, ws, ann, limit=100)
        assert [r["id"] for r in items] == [r["id"] for r in board_order(items)]
        assert {r["id"] for r in items} == created
