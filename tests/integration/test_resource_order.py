"""Card order kept on the server: ``position`` within a column, moves, the listing's
order and its cursors, bad keys; the re-key of long keys (``_respace``): alone, beside a
held card, against concurrent moves, bounded on a big column; and a busy workspace:
concurrent creates into one workspace, across two workers, each applied once with its
event published once."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import orjson
import pytest
from aiohttp.test_utils import TestClient
from nats.aio.client import Client as NATS
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.resources import service
from handlers.resources.models import Resource
from handlers.resources.positions import RESPACE_AFTER, RESPACE_SPAN, key_between, keys_between
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


def _dsn(db: async_sessionmaker[AsyncSession]) -> str:
    url = db.kw["bind"].url
    dsn: str = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return dsn


async def _column_lock_waiters(db: async_sessionmaker[AsyncSession], key: int) -> int:
    """How many transactions wait for advisory lock ``key`` (a bigint key is split into
    classid, its high half, and objid, its low half, in ``pg_locks``; shifted back into
    a bigint they make the signed key again)."""
    async with db() as session:
        found = await session.scalar(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = :key"
            ),
            {"key": key},
        )
    return int(found or 0)


class TestRespace:
    """A move that leaves its card a key longer than RESPACE_AFTER re-keys the run of
    long keys around it (``handlers/resources/service.py``, ``_respace``)."""

    async def test_swapping_two_cards_again_and_again_never_runs_out_of_keys(
        self, domain: Domain, nc: NATS, settings: Settings
    ) -> None:
        """The first two cards of a column swapped 400 times, each move the browser's:
        the key between the new neighbours. Every such key halves a gap, and a key is at
        most 64 characters: after about 300 moves into one gap there is none left that
        the API takes. The server gives the cards around a move fresh keys once its key
        passes RESPACE_AFTER characters, so every move finds room; the cards re-keyed
        are changed like any other (version, event)."""
        ann = await domain.person("ann")
        ws = (await domain.workspace(ann))["id"]
        cards = [await domain.resource(ws, ann, status="todo") for _ in range(4)]
        other = await domain.resource(ws, ann, status="done")
        column, respaced = cards, 0
        for n in range(400):
            first, second, third = column[0], column[1], column[2]
            key = key_between(second["position"], third["position"])
            moved = await domain.call(
                "PATCH",
                f"/workspaces/{ws}/resources/{first['id']}",
                ann,
                json={"position": key},
                expect=200,
            )
            assert len(moved["position"]) <= RESPACE_AFTER, n
            expected = [second["id"], first["id"], third["id"], *(r["id"] for r in column[3:])]
            if moved["position"] == key:
                column = [second, moved, *column[2:]]
            else:  # re-keyed, with cards around it
                column = await listing(domain, ws, ann, status="todo")
                respaced += 1
            assert [r["id"] for r in column] == expected
        assert respaced > 0
        column = await listing(domain, ws, ann, status="todo")
        assert [r["id"] for r in column[2:]] == [cards[2]["id"], cards[3]["id"]]
        assert all(len(r["position"]) <= RESPACE_AFTER for r in column)
        assert len({r["position"] for r in column}) == 4
        # The other column kept its key; every re-keyed card has its version and event.
        assert (await listing(domain, ws, ann, status="done"))[0] == other
        versions = sum(r["version"] - 1 for r in column)

        async def published() -> None:
            events = await workspace_events(nc, settings, ws)
            updated = [e["data"] for e in events if e["type"] == "resource.updated"]
            assert len(updated) == versions
            last = {u["id"]: (u["position"], u["version"]) for u in updated}
            assert {
                r["id"]: (r["position"], r["version"]) for r in column if r["version"] > 1
            } == last

        await eventually(published)

    async def test_a_card_another_change_holds_stops_the_re_key_and_is_not_waited_for(
        self, domain: Domain, db: async_sessionmaker[AsyncSession]
    ) -> None:
        """A long move next to a card another transaction holds locked re-keys nothing
        (it answers while the lock is held: it did not wait for it); the next long move,
        once it is free, re-keys both."""
        ann = await domain.person("ann")
        ws = (await domain.workspace(ann))["id"]
        long = "a0" + "V" * 31  # 33 characters: past RESPACE_AFTER
        low = await domain.resource(ws, ann, position="a0")
        held = await domain.resource(ws, ann, position=long)
        high = await domain.resource(ws, ann, position="a1")
        card = await domain.resource(ws, ann, position="a2")
        path = f"/workspaces/{ws}/resources/{card['id']}"
        before_held = long[:-1] + "G"  # between low and held, as long
        async with db() as session, session.begin():
            await session.execute(
                select(Resource.id).where(Resource.id == uuid.UUID(held["id"])).with_for_update()
            )
            moved = await domain.call(
                "PATCH", path, ann, json={"position": before_held}, expect=200
            )
        assert (moved["position"], moved["version"]) == (before_held, 2)
        items = await listing(domain, ws, ann)
        assert [r["id"] for r in items] == [low["id"], card["id"], held["id"], high["id"]]
        assert items[2]["version"] == 1
        # Free now: the next long move re-keys the run of long keys, between a0 and a1.
        moved = await domain.call("PATCH", path, ann, json={"position": long + "1"}, expect=200)
        items = await listing(domain, ws, ann)
        assert [r["id"] for r in items] == [low["id"], held["id"], card["id"], high["id"]]
        assert [r["position"] for r in items] == ["a0", *keys_between("a0", "a1", 2), "a1"]
        assert [r["version"] for r in items] == [1, 2, 3, 1]
        assert moved == items[2]

    async def test_long_moves_while_another_is_in_flight_keep_the_keys_and_order_sent(
        self, domain: Domain, db: async_sessionmaker[AsyncSession], second_worker: RunningWorker
    ) -> None:
        """Ten cards moved at once, across two workers, to distinct long keys between the
        same two cards, while another write into the column is in flight (held here as
        such a write holds it: the column's lock, shared): none re-keys, so each keeps the
        key it sent — the order sent, no two alike. (Before, each re-keyed on its own view
        of the column, where it was alone between a0 and a1: all ten got a0V, in an order
        of their ids.) Once the column is free, the next long move re-keys all eleven
        long keys, in order, to short keys of their own."""
        ann = await domain.person("ann")
        ws = (await domain.workspace(ann))["id"]
        low = await domain.resource(ws, ann, position="a0")
        high = await domain.resource(ws, ann, position="a1")
        cards = [await domain.resource(ws, ann, position="a" + c) for c in "23456789AB"]
        last = await domain.resource(ws, ann, position="aC")
        base = "a0" + "V" * 31
        sent = [base + "123456789A"[n] for n in range(10)]
        holder = await asyncpg.connect(_dsn(db))
        try:
            await holder.execute(
                "SELECT pg_advisory_lock_shared($1)",
                service.column_lock(uuid.UUID(ws), low["status"]),
            )
            responses = await asyncio.gather(
                *(
                    domain.call(
                        "PATCH",
                        f"/workspaces/{ws}/resources/{card['id']}",
                        ann,
                        json={"position": sent[n]},
                    )
                    for n, card in enumerate(cards)
                )
            )
        finally:
            await holder.close()
        assert [r.status for r in responses] == [200] * 10
        items = await listing(domain, ws, ann)
        assert [r["id"] for r in items] == [
            low["id"],
            *(c["id"] for c in cards),
            high["id"],
            last["id"],
        ]
        assert [r["position"] for r in items[1:-2]] == sent
        # Free: one more long move, between the first two, re-keys the run.
        between = key_between(sent[0], sent[1])
        assert len(between) > RESPACE_AFTER
        path = f"/workspaces/{ws}/resources/{last['id']}"
        moved = await domain.call("PATCH", path, ann, json={"position": between}, expect=200)
        items = await listing(domain, ws, ann)
        assert [r["id"] for r in items] == [
            low["id"],
            cards[0]["id"],
            last["id"],
            *(c["id"] for c in cards[1:]),
            high["id"],
        ]
        assert [r["position"] for r in items] == ["a0", *keys_between("a0", "a1", 11), "a1"]
        assert moved == items[2]

    @pytest.mark.parametrize("run", range(3))
    async def test_long_moves_at_once_leave_keys_of_their_own(
        self, domain: Domain, second_worker: RunningWorker, run: int
    ) -> None:
        """Ten cards moved at once, across two workers, to distinct long keys between the
        same two cards, as they come: every move answers 200, no two cards share a key,
        the column reads in key order, and the cards around the run are not touched.
        (Before, every move re-keyed its card alone to a0V: ten equal keys.) Which moves
        re-key depends on how they overlap; a move built from keys made before a re-key
        lands by its key among the new ones, so the order sent is not asserted here (the
        test above pins it)."""
        ann = await domain.person("ann")
        ws = (await domain.workspace(ann))["id"]
        low = await domain.resource(ws, ann, position="a0")
        high = await domain.resource(ws, ann, position="a1")
        cards = [await domain.resource(ws, ann, position="a" + c) for c in "23456789AB"]
        base = "a0" + "V" * 31
        responses = await asyncio.gather(
            *(
                domain.call(
                    "PATCH",
                    f"/workspaces/{ws}/resources/{card['id']}",
                    ann,
                    json={"position": base + "123456789A"[n]},
                )
                for n, card in enumerate(cards)
            )
        )
        assert [r.status for r in responses] == [200] * 10
        items = await listing(domain, ws, ann)
        assert len({r["position"] for r in items}) == 12
        assert (items[0], items[-1]) == (low, high)
        assert {r["id"] for r in items[1:-1]} == {c["id"] for c in cards}

    async def test_a_write_into_the_run_waits_for_the_re_key_and_is_never_crossed(
        self,
        domain: Domain,
        db: async_sessionmaker[AsyncSession],
        second_worker: RunningWorker,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A card dropped into the run while a re-key is under way (held here, by a
        barrier, after it has taken the column and before it reads the run) waits for the
        re-key to commit: it is never put into the run between the re-key's read and its
        writes, where the re-key would cross it. (Before, the re-key read the column
        without a lock: a card committed between A and B meanwhile ended up outside them.)
        It then lands by the key it sent among the new keys."""
        ann = await domain.person("ann")
        ws = (await domain.workspace(ann))["id"]
        low = await domain.resource(ws, ann, position="a0")
        a = await domain.resource(ws, ann, position="a0Z1234567")  # long (> SHORT_KEY)
        b = await domain.resource(ws, ann, position="a0a1111111")
        high = await domain.resource(ws, ann, position="a1")
        moving = await domain.resource(ws, ann, position="a2")
        other = await domain.resource(ws, ann, status="done", position="a0")
        barrier = 0x6875_6262  # an advisory lock of this test's own
        paused = text(
            service._BELOW.text.replace(
                "ORDER BY", f"AND (SELECT pg_advisory_xact_lock({barrier})) IS NOT NULL ORDER BY"
            )
        )
        monkeypatch.setattr(service, "_BELOW", paused)
        key = service.column_lock(uuid.UUID(ws), low["status"])
        holder = await asyncpg.connect(_dsn(db))
        try:
            await holder.execute("SELECT pg_advisory_lock($1)", barrier)
            long = "a0k" + "V" * 31
            move = asyncio.ensure_future(
                domain.call(
                    "PATCH",
                    f"/workspaces/{ws}/resources/{moving['id']}",
                    ann,
                    json={"position": long},
                )
            )

            async def re_key_paused() -> None:
                found = await holder.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    " AND objid = $1 AND classid = 0",
                    barrier,
                )
                assert found == 1

            await eventually(re_key_paused)
            drop = asyncio.ensure_future(
                domain.call(
                    "PATCH",
                    f"/workspaces/{ws}/resources/{other['id']}",
                    ann,
                    json={"status": low["status"], "position": "a0Zz"},  # between A and B
                )
            )

            async def drop_waits() -> None:
                assert await _column_lock_waiters(db, key) == 1

            await eventually(drop_waits)
            assert not drop.done()
            await holder.execute("SELECT pg_advisory_unlock($1)", barrier)
            moved, dropped = await move, await drop
        finally:
            await holder.close()
        assert (moved.status, dropped.status) == (200, 200)
        moved_body, dropped_body = await moved.json(), await dropped.json()
        assert dropped_body["position"] == "a0Zz"
        items = await listing(domain, ws, ann, status=low["status"])
        # The re-key saw A and B (and no drop): all three spread between a0 and a1.
        run = [r for r in items if r["id"] in {a["id"], b["id"], moving["id"]}]
        assert [r["id"] for r in run] == [a["id"], b["id"], moving["id"]]
        assert [r["position"] for r in run] == keys_between("a0", "a1", 3)
        assert moved_body == run[2]
        assert (items[0]["id"], items[-1]["id"]) == (low["id"], high["id"])
        assert len(items) == 6

    async def test_a_long_run_on_a_big_column_re_keys_a_bounded_window(
        self, domain: Domain, db: async_sessionmaker[AsyncSession], nc: NATS, settings: Settings
    ) -> None:
        """A column of 20,000 cards, 5,000 of them a run of long keys, beside another
        column with the same 5,000 keys: a long move in the middle of the run re-keys
        RESPACE_SPAN cards either side of it and no more (each with its version and
        event), and reads at most RESPACE_SPAN + 1 rows either side, by the column's
        index (the plans of the two reads, run as the move ran them)."""
        ann = await domain.person("ann")
        ws = (await domain.workspace(ann))["id"]
        await domain.resource(ws, ann, position="a0")
        moving = await domain.resource(ws, ann, position="a2")
        status = moving["status"]
        async with db() as session, session.begin():
            insert = (
                "INSERT INTO resources (id, workspace_id, kind, title, status, position)"
                " SELECT gen_random_uuid(), :ws, 'task', 't', :status, {key}"
                " FROM generate_series(1, :n) g"
            )
            await session.execute(
                text(insert.format(key="'a0V' || lpad(to_hex(g), 7, '0') || '1'")),
                {"ws": uuid.UUID(ws), "status": status, "n": 5000},
            )
            await session.execute(
                text(insert.format(key="'b' || lpad(to_hex(g), 6, '0')")),
                {"ws": uuid.UUID(ws), "status": status, "n": 15000},
            )
            # Another column of the same long keys, which no read of this one may walk.
            await session.execute(
                text(insert.format(key="'a0V' || lpad(to_hex(g), 7, '0') || '1'")),
                {"ws": uuid.UUID(ws), "status": "done", "n": 5000},
            )
            await session.execute(text("ANALYZE resources"))
        long = "a0V" + f"{2500:07x}" + "1" + "V" * 30
        path = f"/workspaces/{ws}/resources/{moving['id']}"
        moved = await domain.call("PATCH", path, ann, json={"position": long}, expect=200)
        assert len(moved["position"]) <= RESPACE_AFTER
        async with db() as session:
            changed = (
                await session.execute(
                    select(Resource.id, Resource.position)
                    .where(Resource.workspace_id == uuid.UUID(ws), Resource.version > 1)
                    .order_by(Resource.position, Resource.id)
                )
            ).all()
            # The plans of the two reads, from the moved card's old place.
            where = {
                "workspace_id": uuid.UUID(ws),
                "status": status,
                "position": long,
                "id": uuid.UUID(moving["id"]),
                "n": RESPACE_SPAN + 1,
            }
            plans = [
                (
                    await session.execute(
                        text("EXPLAIN (ANALYZE, FORMAT JSON) " + read.text), where
                    )
                ).scalar_one()
                for read in (service._BELOW, service._ABOVE)
            ]
        assert len(changed) == 2 * RESPACE_SPAN + 1
        assert str(moving["id"]) in {str(id_) for id_, _ in changed}
        for plan in plans:
            top = (orjson.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]
            assert top["Node Type"] == "Limit"
            (scan,) = top["Plans"]
            assert scan["Node Type"] == "Index Scan"
            assert scan["Index Name"] == "ix_resources_workspace_status_position"
            assert scan["Actual Rows"] + scan.get("Rows Removed by Filter", 0) <= RESPACE_SPAN + 1

        async def published() -> None:
            events = await workspace_events(nc, settings, ws)
            updated = [e["data"]["id"] for e in events if e["type"] == "resource.updated"]
            assert sorted(updated) == sorted(str(id_) for id_, _ in changed)

        await eventually(published)


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
        assert {r["id"] for r in items} == created
