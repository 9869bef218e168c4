"""Resources through the REST API: CRUD, lists, versions, idempotency, caching, events."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient
from nats.aio.client import Client as NATS
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.idempotency import IdempotencyRecord
from handlers.outbox import OutboxEvent
from handlers.resources.models import Resource
from handlers.workspaces.models import Activity
from hubbub.bus import Bus
from hubbub.config import Settings
from hubbub.contracts.api.common import MAX_TITLE
from hubbub.contracts.api.resources import MAX_DATA_DEPTH, MAX_PAGE_BYTES
from hubbub.contracts.channels import Channel
from hubbub.contracts.envelope import Caller, CallerKind
from hubbub.contracts.errors import Conflict
from hubbub.contracts.subjects import Subjects
from tests.support import ops
from tests.support.waiting import eventually
from tests.support.workspaces import Domain
from workers.app import RunningWorker


@pytest.fixture
def domain(hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]) -> Domain:
    return Domain(hub_client, db)


async def workspace_events(nc: NATS, settings: Settings, workspace_id: str) -> list[Any]:
    return await channel_events(nc, settings, Channel.workspace(workspace_id))


async def channel_events(nc: NATS, settings: Settings, channel: Channel) -> list[Any]:
    subjects = Subjects(settings.namespace)
    js = nc.jetstream()
    stream = subjects.stream(channel.kind)
    info = await js.stream_info(stream)
    subject = subjects.event(channel)
    events = []
    for seq in range(max(info.state.first_seq, 1), info.state.last_seq + 1):
        msg = await js.get_msg(stream, seq)
        if msg.subject == subject:
            events.append(orjson.loads(msg.data or b"{}"))
    return events


class TestCrud:
    async def test_create_then_get_with_its_etag(self, domain: Domain) -> None:
        ws, people = await domain.team()
        made = await domain.resource(
            ws["id"], people["member"], title=" Fix it ", tags=["a", "b", "a"], data={"n": 1}
        )
        response = await domain.call(
            "GET", f"/workspaces/{ws['id']}/resources/{made['id']}", people["viewer"]
        )
        body = await response.json()
        assert (response.status, response.headers["ETag"]) == (200, '"1"')
        assert (body["title"], body["tags"], body["data"], body["status"]) == (
            "Fix it",
            ["a", "b"],
            {"n": 1},
            "open",
        )

    async def test_if_none_match_with_the_current_etag_is_304(self, domain: Domain) -> None:
        ws, people = await domain.team()
        made = await domain.resource(ws["id"], people["member"])
        path = f"/workspaces/{ws['id']}/resources/{made['id']}"
        response = await domain.call(
            "GET", path, people["member"], headers={"If-None-Match": '"1"'}
        )
        assert response.status == 304

    async def test_patch_changes_only_what_is_sent_and_raises_the_version(
        self, domain: Domain
    ) -> None:
        ws, people = await domain.team()
        made = await domain.resource(ws["id"], people["member"], body="keep me")
        path = f"/workspaces/{ws['id']}/resources/{made['id']}"
        changed = await domain.call(
            "PATCH", path, people["member"], json={"status": "done"}, expect=200
        )
        assert (changed["status"], changed["body"], changed["version"]) == ("done", "keep me", 2)
        again = await domain.call("GET", path, people["viewer"], expect=200)
        assert again["version"] == 2  # the cached version 1 was dropped

    async def test_soft_delete_hides_it_and_restore_brings_it_back(self, domain: Domain) -> None:
        ws, people = await domain.team()
        made = await domain.resource(ws["id"], people["member"])
        path = f"/workspaces/{ws['id']}/resources/{made['id']}"
        await domain.call("DELETE", path, people["member"], headers={"If-Match": '"1"'}, expect=204)
        await domain.call("GET", path, people["member"], expect=404)
        trash = await domain.call(
            "GET",
            f"/workspaces/{ws['id']}/resources",
            people["member"],
            params={"deleted": "true"},
            expect=200,
        )
        assert [r["id"] for r in trash["items"]] == [made["id"]]
        back = await domain.call("POST", f"{path}/restore", people["member"], expect=200)
        assert (back["deleted_at"], back["version"]) == (None, 3)
        await domain.call("POST", f"{path}/restore", people["member"], expect=409)

    @pytest.mark.parametrize(
        "body",
        [
            {"kind": "task", "title": "x", "data": {"big": "x" * 40_000}},
            {"kind": "task", "title": "   "},
            {"kind": "task", "title": "\u200b"},
            {"kind": "task", "title": "\u202eexe.txt"},
            {"kind": "task", "title": "a\u2028b"},
            {"kind": "Task", "title": "x"},
            {"kind": "task", "title": "x", "tags": ["has space"]},
            {"kind": "task", "title": "x", "tags": [f"t{i}" for i in range(21)]},
            {"kind": "task", "title": "x", "body": "nul\x00"},
            {"kind": "task", "title": "x", "data": {"k": "nul\x00"}},
            {"kind": "task", "title": "x", "extra": 1},
        ],
    )
    async def test_bad_fields_are_422(self, domain: Domain, body: dict[str, Any]) -> None:
        ann = await domain.person("ann")
        ws = await domain.workspace(ann)
        problem = await domain.call(
            "POST", f"/workspaces/{ws['id']}/resources", ann, json=body, expect=422
        )
        assert problem["code"] == "validation_failed"


class TestLists:
    async def test_filters_and_full_text_search(self, domain: Domain) -> None:
        ann = await domain.person("ann")
        ws = await domain.workspace(ann)
        a = await domain.resource(ws["id"], ann, title="Running shoes", tags=["x", "y"])
        b = await domain.resource(ws["id"], ann, title="Other", body="we ran, running fast")
        c = await domain.resource(ws["id"], ann, kind="note", title="Quiet", status="done")
        path = f"/workspaces/{ws['id']}/resources"

        async def ids(**params: Any) -> list[str]:
            page = await domain.call("GET", path, ann, params=params, expect=200)
            return [r["id"] for r in page["items"]]

        # stemmed: running ~ run; in the board's order (a then b in the column "open")
        assert await ids(q="run") == [a["id"], b["id"]]
        assert await ids(q="run", sort="created_at") == [b["id"], a["id"]]  # newest first
        assert await ids(kind="note") == [c["id"]]
        assert await ids(status="done") == [c["id"]]
        assert await ids(tag="x") == [a["id"]]
        assert await ids(created_by=ann.id, sort="title", order="asc") == [
            b["id"],
            c["id"],
            a["id"],
        ]

    async def test_repeated_tags_mean_all_of_them(self, domain: Domain) -> None:
        ann = await domain.person("ann")
        ws = await domain.workspace(ann)
        both = await domain.resource(ws["id"], ann, tags=["x", "y"])
        await domain.resource(ws["id"], ann, tags=["x"])
        response = await domain.client.get(
            f"/api/v1/workspaces/{ws['id']}/resources?tag=x&tag=y", headers=ann.headers
        )
        assert [r["id"] for r in (await response.json())["items"]] == [both["id"]]

    async def test_a_cursor_of_another_sort_is_refused(self, domain: Domain) -> None:
        ann = await domain.person("ann")
        ws = await domain.workspace(ann)
        for _ in range(3):
            await domain.resource(ws["id"], ann)
        path = f"/workspaces/{ws['id']}/resources"
        page = await domain.call("GET", path, ann, params={"limit": "1"}, expect=200)
        await domain.call(
            "GET",
            path,
            ann,
            params={"limit": "1", "cursor": page["next_cursor"], "sort": "title"},
            expect=400,
        )
        await domain.call("GET", path, ann, params={"cursor": "garbage"}, expect=400)

    @pytest.mark.parametrize("character", ["😀", '"', "漢"])
    async def test_the_cursor_after_the_longest_title_gets_the_next_page(
        self, domain: Domain, character: str
    ) -> None:
        """A cursor carries the last title: 200 characters of 4 bytes of JSON each is
        over 1,000 characters of cursor, which the next request must take back."""
        ann = await domain.person("ann")
        ws = await domain.workspace(ann)
        first = await domain.resource(ws["id"], ann, title=character * MAX_TITLE)
        second = await domain.resource(ws["id"], ann, title="~" + character * (MAX_TITLE - 1))
        path = f"/workspaces/{ws['id']}/resources"
        params = {"sort": "title", "order": "desc", "limit": "1"}
        page = await domain.call("GET", path, ann, params=params, expect=200)
        cursor = page["next_cursor"]
        next_page = await domain.call(
            "GET", path, ann, params={**params, "cursor": cursor}, expect=200
        )
        ids = [page["items"][0]["id"], next_page["items"][0]["id"]]
        assert sorted(ids) == sorted([first["id"], second["id"]])

    async def test_a_page_of_large_resources_ends_early_and_the_walk_gets_them_all(
        self, domain: Domain
    ) -> None:
        """100 of these would be over a megabyte, more than a worker's reply may be
        (NATS's max_payload): a page ends before it passes MAX_PAGE_BYTES, and its
        next_cursor goes on where it stopped."""
        ann = await domain.person("ann")
        ws = await domain.workspace(ann)
        body = "é" * 50_000  # 100,000 bytes of JSON
        made = [
            (await domain.resource(ws["id"], ann, title=f"t{n:02}", body=body))["id"]
            for n in range(12)
        ]
        path = f"/workspaces/{ws['id']}/resources"
        seen: list[str] = []
        pages = 0
        params = {"limit": "100", "sort": "title", "order": "asc"}
        while True:
            response = await domain.call("GET", path, ann, params=params)
            raw = await response.read()
            assert response.status == 200, raw[:300]
            assert len(raw) <= MAX_PAGE_BYTES
            page = orjson.loads(raw)
            assert page["items"]  # never an empty page with a cursor
            seen += [r["id"] for r in page["items"]]
            pages += 1
            if page["next_cursor"] is None:
                break
            params = {**params, "cursor": page["next_cursor"]}
        assert seen == made  # in order, each once
        assert pages >= 3

    async def test_updated_since_outside_years_1_to_9999_in_utc_is_422(
        self, domain: Domain
    ) -> None:
        """The database driver converts to UTC: these would leave datetime's range."""
        ann = await domain.person("ann")
        ws = await domain.workspace(ann)
        made = await domain.resource(ws["id"], ann)
        path = f"/workspaces/{ws['id']}/resources"
        for edge in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-05:00"):
            problem = await domain.call(
                "GET", path, ann, params={"updated_since": edge}, expect=422
            )
            assert [e["loc"] for e in problem["details"]["errors"]] == [["updated_since"]]
        for since, ids in (("0001-01-01T00:00:00Z", [made["id"]]), ("9999-12-31T23:59:59Z", [])):
            page = await domain.call("GET", path, ann, params={"updated_since": since}, expect=200)
            assert [r["id"] for r in page["items"]] == ids

    async def test_the_limit_is_at_most_100(self, domain: Domain) -> None:
        ann = await domain.person("ann")
        ws = await domain.workspace(ann)
        await domain.call(
            "GET", f"/workspaces/{ws['id']}/resources", ann, params={"limit": "101"}, expect=422
        )

    @pytest.mark.parametrize(("sort", "order"), [("created_at", "desc"), ("title", "asc")])
    async def test_paging_while_100_are_inserted_repeats_none_and_skips_none(
        self,
        domain: Domain,
        db: async_sessionmaker[AsyncSession],
        second_worker: RunningWorker,
        sort: str,
        order: str,
    ) -> None:
        ann = await domain.person("ann")
        ws = await domain.workspace(ann)
        async with db() as session:
            for i in range(60):
                session.add(
                    Resource(
                        workspace_id=uuid.UUID(ws["id"]),
                        kind="task",
                        title=f"t{i % 7}",
                        status="open",
                        position=f"a{i % 10}",
                    )
                )
            await session.commit()
            existing = set(map(str, (await session.scalars(select(Resource.id))).all()))
        path = f"/workspaces/{ws['id']}/resources"

        async def insert() -> None:
            for i in range(100):
                await domain.resource(ws["id"], ann, title=f"t{i % 5}")

        inserting = asyncio.ensure_future(insert())
        seen: list[str] = []
        cursor = None
        while True:
            params = {"limit": "7", "sort": sort, "order": order}
            if cursor:
                params["cursor"] = cursor
            page = await domain.call("GET", path, ann, params=params, expect=200)
            seen += [r["id"] for r in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
            await asyncio.sleep(0.01)
        await inserting
        assert len(seen) == len(set(seen))
        assert existing <= set(seen)


class TestConcurrency:
    async def test_20_concurrent_patches_with_one_if_match_one_wins(
        self, domain: Domain, second_worker: RunningWorker
    ) -> None:
        ws, people = await domain.team()
        made = await domain.resource(ws["id"], people["member"])
        path = f"/workspaces/{ws['id']}/resources/{made['id']}"
        responses = await asyncio.gather(
            *(
                domain.call(
                    "PATCH",
                    path,
                    people["member"],
                    json={"title": f"v{i}"},
                    headers={"If-Match": '"1"'},
                )
                for i in range(20)
            )
        )
        statuses = sorted(r.status for r in responses)
        assert statuses == [200] + [412] * 19
        final = await domain.call("GET", path, people["member"], expect=200)
        assert final["version"] == 2

    async def test_one_idempotency_key_sent_10_times_at_once_makes_one_resource(
        self,
        domain: Domain,
        db: async_sessionmaker[AsyncSession],
        second_worker: RunningWorker,
    ) -> None:
        ann = await domain.person("ann")
        ws = await domain.workspace(ann)
        headers = {"Idempotency-Key": "create-once"}
        responses = await asyncio.gather(
            *(
                domain.call(
                    "POST",
                    f"/workspaces/{ws['id']}/resources",
                    ann,
                    json={"kind": "task", "title": "once"},
                    headers=headers,
                )
                for _ in range(10)
            )
        )
        bodies = [await r.json() for r in responses]
        assert [r.status for r in responses] == [201] * 10
        assert len({b["id"] for b in bodies}) == 1
        async with db() as session:
            count = await session.scalar(
                select(func.count()).select_from(Resource).where(Resource.title == "once")
            )
        assert count == 1

    async def test_the_same_key_with_another_body_is_422(self, domain: Domain) -> None:
        ann = await domain.person("ann")
        ws = await domain.workspace(ann)
        path = f"/workspaces/{ws['id']}/resources"
        headers = {"Idempotency-Key": "k1"}
        await domain.call(
            "POST", path, ann, json={"kind": "task", "title": "a"}, headers=headers, expect=201
        )
        problem = await domain.call(
            "POST", path, ann, json={"kind": "task", "title": "b"}, headers=headers, expect=422
        )
        assert problem["code"] == "unprocessable"

    async def test_a_key_past_its_time_creates_again(
        self, domain: Domain, db: async_sessionmaker[AsyncSession], settings: Settings
    ) -> None:
        """resources.create claims its key itself: like every other operation, a key older
        than HUBBUB_IDEMPOTENCY_TTL_S applies again, pruned by the janitor or not."""
        ann = await domain.person("ann")
        ws = await domain.workspace(ann)
        path = f"/workspaces/{ws['id']}/resources"
        headers = {"Idempotency-Key": "old-key"}
        body = {"kind": "task", "title": "again"}
        first = await domain.call("POST", path, ann, json=body, headers=headers, expect=201)
        async with db() as session, session.begin():
            await session.execute(
                update(IdempotencyRecord).values(
                    created_at=func.now()
                    - text(f"interval '{settings.idempotency_ttl_s + 60} seconds'")
                )
            )
        second = await domain.call("POST", path, ann, json=body, headers=headers, expect=201)
        assert second["id"] != first["id"]
        third = await domain.call("POST", path, ann, json=body, headers=headers, expect=201)
        assert third["id"] == second["id"]  # the taken-over key replays from now on

    async def test_rpc_expected_version_is_409(self, domain: Domain, bus: Bus) -> None:
        ann = await domain.person("ann")
        ws = await domain.workspace(ann)
        made = await domain.resource(ws["id"], ann)
        with pytest.raises(Conflict):
            await bus.request(
                ops.catalog_with_tests()["resources.update"],
                {
                    "workspace_id": ws["id"],
                    "resource_id": made["id"],
                    "title": "x",
                    "expected_version": 5,
                },
                caller=Caller(kind=CallerKind.USER, user_id=ann.id, role="member"),
            )


class TestEventsAndActivity:
    async def test_every_change_emits_its_event_and_an_activity_row(
        self, domain: Domain, nc: NATS, settings: Settings
    ) -> None:
        ws, people = await domain.team()
        owner, member = people["owner"], people["member"]
        base = f"/workspaces/{ws['id']}"
        made = await domain.resource(ws["id"], member)
        rpath = f"{base}/resources/{made['id']}"
        await domain.call("PATCH", rpath, member, json={"title": "t2"}, expect=200)
        await domain.call("DELETE", rpath, member, expect=204)
        await domain.call("POST", f"{rpath}/restore", member, expect=200)
        await domain.call("PATCH", base, owner, json={"name": "N"}, expect=200)
        await domain.call(
            "PATCH", f"{base}/members/{member.id}", owner, json={"role": "viewer"}, expect=200
        )
        await domain.call(
            "POST", f"{base}/invitations", owner, json={"email": "i@x.io"}, expect=201
        )
        await domain.call("DELETE", f"{base}/members/{member.id}", owner, expect=204)
        expected = [
            "workspace.created",
            # The team's three other people each accepted an invitation.
            *["invitation.created", "member.added"] * 3,
            "resource.created",
            "resource.updated",
            "resource.deleted",
            "resource.restored",
            "workspace.updated",
            "member.updated",
            "invitation.created",
            "member.removed",
        ]

        async def all_published() -> None:
            events = await workspace_events(nc, settings, ws["id"])
            assert [e["type"] for e in events] == expected

        await eventually(all_published)
        events = await workspace_events(nc, settings, ws["id"])
        at = expected.index("resource.updated")
        updated = events[at]["data"]
        assert (updated["title"], updated["version"], updated["id"]) == ("t2", 2, made["id"])
        feed = await domain.call(
            "GET", f"{base}/activity", owner, params={"limit": "100"}, expect=200
        )
        assert [a["action"] for a in feed["items"]] == expected[::-1]
        edit = feed["items"][-1 - at]  # newest first
        assert (edit["before_version"], edit["after_version"]) == (1, 2)

        # The member hears about its own membership on its user channel.
        async def member_notified() -> None:
            mine = await channel_events(nc, settings, Channel.user(member.id))
            assert [(e["type"], e["data"]["role"]) for e in mine] == [
                ("member.added", "member"),
                ("member.updated", "viewer"),
                ("member.removed", "viewer"),
            ]

        await eventually(member_notified)

    async def test_a_rolled_back_change_leaves_no_event_no_row_and_no_activity(
        self, domain: Domain, bus: Bus, db: async_sessionmaker[AsyncSession]
    ) -> None:
        """The real resources.create handler, made to fail after it journalled."""
        ann = await domain.person("ann")
        ws = await domain.workspace(ann)
        with pytest.raises(Conflict):
            await bus.request(
                ops.create_then_fail,
                {"workspace_id": ws["id"], "kind": "task", "title": "ghost"},
                caller=Caller(kind=CallerKind.USER, user_id=ann.id, role="member"),
            )
        async with db() as session:
            rows = await session.scalar(select(func.count()).select_from(Resource))
            activity = (await session.scalars(select(Activity.action))).all()
            outbox = (await session.scalars(select(OutboxEvent.event_type))).all()
        assert (rows, "resource.created" in activity, "resource.created" in outbox) == (
            0,
            False,
            False,
        )


def nested(levels: int) -> dict[str, Any]:
    """A ``data`` object ``levels`` deep: itself, then lists down to a number."""
    value: Any = 1
    for _ in range(levels - 1):
        value = [value]
    return {"d": value}


class TestDeepData:
    async def test_data_at_the_depth_cap_is_stored_and_read_back(self, domain: Domain) -> None:
        ann = await domain.person("ann")
        ws = await domain.workspace(ann)
        made = await domain.resource(ws["id"], ann, data=nested(MAX_DATA_DEPTH))
        path = f"/workspaces/{ws['id']}/resources"
        again = await domain.call("GET", f"{path}/{made['id']}", ann, expect=200)
        assert again["data"] == nested(MAX_DATA_DEPTH)
        page = await domain.call("GET", path, ann, expect=200)
        assert [r["id"] for r in page["items"]] == [made["id"]]

    async def test_one_level_deeper_is_422_naming_data_and_nothing_is_stored(
        self, domain: Domain, db: async_sessionmaker[AsyncSession]
    ) -> None:
        """Deeper data would be stored, then break every read of it (a worker's reply
        is parsed no deeper than 200 levels): a create or a change is refused first."""
        ann = await domain.person("ann")
        ws = await domain.workspace(ann)
        path = f"/workspaces/{ws['id']}/resources"
        for deep in (nested(MAX_DATA_DEPTH + 1), nested(250)):
            problem = await domain.call(
                "POST", path, ann, json={"kind": "task", "title": "x", "data": deep}, expect=422
            )
            assert problem["code"] == "validation_failed"
            assert [e["loc"] for e in problem["details"]["errors"]] == [["data"]]
        made = await domain.resource(ws["id"], ann)
        await domain.call(
            "PATCH",
            f"{path}/{made['id']}",
            ann,
            json={"data": nested(MAX_DATA_DEPTH + 1)},
            expect=422,
        )
        async with db() as session:
            stored = await session.scalars(
                select(Resource.data).where(Resource.workspace_id == uuid.UUID(ws["id"]))
            )
            assert stored.all() == [{}]
        await domain.call("GET", path, ann, expect=200)


class TestLargeNumbers:
    async def test_a_huge_number_in_data_round_trips_and_its_event_is_published(
        self, domain: Domain, nc: NATS, settings: Settings
    ) -> None:
        """jsonb stores 1e29 as a 30-digit integer; it must come back as the float it was,
        or the relay could not publish the event."""
        ann = await domain.person("ann")
        ws = await domain.workspace(ann)
        made = await domain.resource(ws["id"], ann, data={"big": 1e29, "n": [18446744073709551615]})
        again = await domain.call(
            "GET", f"/workspaces/{ws['id']}/resources/{made['id']}", ann, expect=200
        )
        assert again["data"] == {"big": 1e29, "n": [18446744073709551615]}

        async def published() -> None:
            types = [e["type"] for e in await workspace_events(nc, settings, ws["id"])]
            assert "resource.created" in types

        await eventually(published)
