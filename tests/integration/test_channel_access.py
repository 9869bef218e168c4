"""channels.authorize for workspace and chat channels: answered from membership, cached
in Redis, and forgotten (with a membership_revoked or membership_changed message) when
membership changes."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient
from nats.aio.client import Client as NATS
from redis.asyncio import Redis
from sqlalchemy import func, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.accounts import revocation
from handlers.accounts.models import User
from handlers.invalidations import PendingInvalidation
from handlers.workspaces import acl
from handlers.workspaces import channels as channels_handlers
from handlers.workspaces.channels import COMMIT_SLACK_S
from hub.revocations import ask_workers
from hubbub.bus import Bus
from hubbub.client import HubbubClient, RemoteError
from hubbub.config import Settings
from hubbub.contracts.api import access as access_api
from hubbub.contracts.api import channels as channels_api
from hubbub.contracts.api.access import PendingAccess
from hubbub.contracts.subjects import Subjects
from hubbub.keys import RedisKeys
from tests.support.accounts import make_user
from tests.support.control import WorkerAsks, heard_so_far
from tests.support.workspaces import Domain
from workers.app import RunningWorker


@pytest.fixture
def domain(hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]) -> Domain:
    return Domain(hub_client, db)


async def allowed(bus: Bus, user_id: str, channel: str, action: str = "subscribe") -> bool:
    reply = await bus.request(
        channels_api.authorize,
        {"user_id": user_id, "channel": channel, "action": action},
        caller=None,
    )
    return bool(reply.value.allowed)


class TestAuthorize:
    async def test_members_subscribe_and_only_writers_publish_on_chat(
        self, domain: Domain, bus: Bus
    ) -> None:
        ws, people = await domain.team()
        w, chat = f"workspace:{ws['id']}", f"chat:{ws['id']}"
        answers = {
            name: (
                await allowed(bus, p.id, w),
                await allowed(bus, p.id, chat),
                await allowed(bus, p.id, chat, "publish"),
            )
            for name, p in people.items()
        }
        assert answers == {
            "owner": (True, True, True),
            "admin": (True, True, True),
            "member": (True, True, True),
            "viewer": (True, True, False),
            "out": (False, False, False),
        }

    async def test_other_channels_and_bad_names_are_refused(
        self, bus: Bus, worker: RunningWorker
    ) -> None:
        assert not await allowed(bus, "not-a-uuid", "workspace:also-not")
        assert not await allowed(bus, "00000000-0000-0000-0000-000000000000", "public:x")

    async def test_the_answer_is_cached_for_the_hubs(
        self, domain: Domain, bus: Bus, redis: Redis, settings: Settings
    ) -> None:
        ws, people = await domain.team()
        channel = f"workspace:{ws['id']}"
        await allowed(bus, people["viewer"].id, channel)
        key = RedisKeys(settings.namespace).channel_acl(people["viewer"].id, channel, "subscribe")
        assert await redis.get(key) == b"1"
        assert 0 < await redis.ttl(key) <= settings.cache_ttl_s

    async def test_removal_drops_the_cache_and_tells_the_hubs(
        self, domain: Domain, bus: Bus, redis: Redis, settings: Settings, nc: NATS
    ) -> None:
        ws, people = await domain.team()
        viewer = people["viewer"]
        channel = f"workspace:{ws['id']}"
        await allowed(bus, viewer.id, channel)
        messages: asyncio.Queue[Any] = asyncio.Queue()

        async def on_message(msg: Any) -> None:
            await messages.put(orjson.loads(msg.data))

        await nc.subscribe(Subjects(settings.namespace).control_user(viewer.id), cb=on_message)
        await nc.flush()
        await domain.call(
            "DELETE",
            f"/workspaces/{ws['id']}/members/{viewer.id}",
            people["admin"],
            expect=204,
        )
        message = await asyncio.wait_for(messages.get(), 5)
        assert message == {
            "type": "membership_revoked",
            "user_id": viewer.id,
            "channels": [channel, f"chat:{ws['id']}"],
        }
        key = RedisKeys(settings.namespace).channel_acl(viewer.id, channel, "subscribe")
        assert await redis.get(key) is None
        assert not await allowed(bus, viewer.id, channel)

    async def test_a_role_change_drops_the_cache_and_tells_the_hubs(
        self, domain: Domain, bus: Bus, redis: Redis, settings: Settings, nc: NATS
    ) -> None:
        """A member made viewer keeps the subscriptions; what was cached of the old role
        goes, and the hubs hear that it may be stale."""
        ws, people = await domain.team()
        member = people["member"]
        chat = f"chat:{ws['id']}"
        assert await allowed(bus, member.id, chat, "publish")
        messages: asyncio.Queue[Any] = asyncio.Queue()

        async def on_message(msg: Any) -> None:
            await messages.put(orjson.loads(msg.data))

        await nc.subscribe(Subjects(settings.namespace).control_user(member.id), cb=on_message)
        await nc.flush()
        await domain.call(
            "PATCH",
            f"/workspaces/{ws['id']}/members/{member.id}",
            people["admin"],
            json={"role": "viewer"},
            expect=200,
        )
        message = await asyncio.wait_for(messages.get(), 5)
        assert message == {
            "type": "membership_changed",
            "user_id": member.id,
            "channels": [f"workspace:{ws['id']}", chat],
        }
        key = RedisKeys(settings.namespace).channel_acl(member.id, chat, "publish")
        assert await redis.get(key) is None
        assert not await allowed(bus, member.id, chat, "publish")

    async def test_a_new_member_is_not_kept_out_by_a_cached_refusal(
        self, domain: Domain, bus: Bus
    ) -> None:
        ann, bob = await domain.person("ann"), await domain.person("bob")
        ws = await domain.workspace(ann)
        channel = f"workspace:{ws['id']}"
        assert not await allowed(bus, bob.id, channel)
        await domain.add(ws["id"], ann, bob, "viewer")
        assert await allowed(bus, bob.id, channel)


class TestAHubAfterAMembershipChange:
    """A hub doubts a user's cached answers after a change of their membership
    (``hub/ws/authz.py``): a worker's answer since the change settles each action, and
    Redis, which holds that answer now, is believed again. A new or promoted member
    acts at once, without a worker in the way of every publish."""

    async def test_a_promoted_viewer_publishes_at_once_and_a_worker_is_asked_once(
        self, domain: Domain, hub_client: TestClient[Any, Any], nc: NATS, settings: Settings
    ) -> None:
        ann, bob = await domain.person("ann"), await domain.person("bob")
        ws = await domain.workspace(ann)
        await domain.add(ws["id"], ann, bob, "viewer")
        chat = f"chat:{ws['id']}"
        asks, client = await watched_socket(hub_client, nc, settings, bob.token)
        try:
            await client.subscribe(chat)
            # a viewer: "may not" is cached
            await forbidden(client.publish(chat, {"text": "as a viewer"}))
            await domain.call(
                "PATCH",
                f"/workspaces/{ws['id']}/members/{bob.id}",
                ann,
                json={"role": "member"},
                expect=200,
            )
            await heard_so_far(hub_client.server, nc, settings)
            before = len(await asks.of(bob.id))
            for n in range(5):
                await client.publish(chat, {"text": f"as a member {n}"})
            assert (await asks.of(bob.id))[before:] == [(chat, "publish")]
        finally:
            await client.close()

    async def test_a_new_member_is_let_in_at_once_and_a_worker_is_asked_once_per_action(
        self, domain: Domain, hub_client: TestClient[Any, Any], nc: NATS, settings: Settings
    ) -> None:
        ann, bob = await domain.person("ann"), await domain.person("bob")
        ws = await domain.workspace(ann)
        chat = f"chat:{ws['id']}"
        asks, client = await watched_socket(hub_client, nc, settings, bob.token)
        try:
            await forbidden(client.subscribe(chat))  # an outsider: "may not" is cached
            await domain.add(ws["id"], ann, bob, "member")
            await heard_so_far(hub_client.server, nc, settings)
            before = len(await asks.of(bob.id))
            await client.subscribe(chat)
            for n in range(5):
                await client.publish(chat, {"text": f"hello {n}"})
            assert (await asks.of(bob.id))[before:] == [(chat, "subscribe"), (chat, "publish")]
        finally:
            await client.close()


def ws_url(hub: TestClient[Any, Any]) -> str:
    return f"ws://127.0.0.1:{hub.server.port}/ws"


async def watched_socket(
    hub: TestClient[Any, Any], nc: NATS, settings: Settings, token: str
) -> tuple[WorkerAsks, HubbubClient]:
    """A socket on ``hub`` for ``token``, and a record of what the hubs ask the workers
    from now on."""
    asks = WorkerAsks(nc, settings)
    await asks.start()
    client = HubbubClient(ws_url(hub), token)
    await client.connect()
    return asks, client


async def forbidden(action: Awaitable[Any]) -> None:
    """``action`` is refused with ``forbidden``."""
    with pytest.raises(RemoteError) as refused:
        await action
    assert refused.value.code == "forbidden"


NOT_DUE = datetime.now(UTC) + timedelta(hours=1)  # a kept row the redo loop leaves alone


async def keep(
    db: async_sessionmaker[AsyncSession], kind: str, payload: dict[str, Any], age_s: float = 0
) -> None:
    """A row of ``pending_invalidations``, written ``age_s`` ago, not due for a while."""
    async with db() as session, session.begin():
        session.add(
            PendingInvalidation(
                kind=kind,
                payload=payload,
                due_at=NOT_DUE,
                created_at=func.now() - timedelta(seconds=age_s),
            )
        )


async def pending_access(bus: Bus, after: int = 0) -> PendingAccess:
    reply = await bus.request(access_api.pending, {"after": after}, caller=None)
    answer: PendingAccess = reply.value
    return answer


class TestPendingAccess:
    """``access.pending``: what a change took away whose Redis work waits in PostgreSQL,
    for the hubs that did not hear of it (``hub/revocations.py``)."""

    async def test_it_names_revoked_sessions_deactivated_users_and_unsettled_channels(
        self, bus: Bus, db: async_sessionmaker[AsyncSession], settings: Settings, worker: Any
    ) -> None:
        gone = await make_user(db, f"g-{uuid.uuid4().hex[:6]}@example.com")
        back = await make_user(db, f"b-{uuid.uuid4().hex[:6]}@example.com")
        async with db() as session, session.begin():
            await session.execute(
                update(User).where(User.id == uuid.UUID(gone)).values(is_active=False)
            )
        ws = str(uuid.uuid4())
        await keep(db, revocation.SESSIONS, {"sids": ["s2", "s1"]})
        await keep(db, revocation.USER, {"user_id": gone})
        await keep(db, revocation.USER, {"user_id": back})  # reactivated since: nobody
        await keep(db, acl.FORGET, {"workspace_id": ws, "user_ids": ["u1"]})
        await keep(db, "workspace_cache", {"workspace_id": ws})  # no access in it
        await keep(db, revocation.SESSIONS, {"sids": 7})  # malformed: left out
        before = time.time()
        answer = await pending_access(bus)
        assert (answer.sessions, answer.users, answer.channels, answer.after) == (
            ["s1", "s2"],
            [gone],
            {"u1": [f"chat:{ws}", f"workspace:{ws}"]},
            None,
        )
        lifetime = settings.access_token_ttl_s + settings.jwt_leeway_s
        assert answer.until >= before + lifetime

    async def test_rows_too_old_to_matter_are_left_out(
        self, bus: Bus, db: async_sessionmaker[AsyncSession], settings: Settings, worker: Any
    ) -> None:
        """Every token that could carry such a session has expired, every answer cached
        before such a change too."""
        tokens_live = settings.access_token_ttl_s + settings.jwt_leeway_s + revocation.MARGIN_S
        await keep(db, revocation.SESSIONS, {"sids": ["old"]}, tokens_live + COMMIT_SLACK_S + 5)
        await keep(db, revocation.SESSIONS, {"sids": ["recent"]}, tokens_live)
        ws = str(uuid.uuid4())
        old = settings.cache_ttl_s + COMMIT_SLACK_S + 5
        await keep(db, acl.FORGET, {"workspace_id": ws, "user_ids": ["old"]}, old)
        answer = await pending_access(bus)
        assert (answer.sessions, answer.channels) == (["recent"], {})

    async def test_a_long_answer_comes_in_pages_that_the_hub_reads_to_the_end(
        self,
        bus: Bus,
        db: async_sessionmaker[AsyncSession],
        worker: Any,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setattr(channels_handlers, "PAGE_ROWS", 3)
        monkeypatch.setattr(channels_handlers, "PAGE_ENTRIES", 4)
        for i in range(4):  # two sessions each: a page ends after two rows (4 entries)
            await keep(db, revocation.SESSIONS, {"sids": [f"s{i}a", f"s{i}b"]})
        first = await pending_access(bus)
        assert (first.sessions, first.after is not None) == (["s0a", "s0b", "s1a", "s1b"], True)
        assert first.after is not None
        second = await pending_access(bus, first.after)
        assert (second.sessions, second.after) == (["s2a", "s2b", "s3a", "s3b"], None)
        everything = await ask_workers(bus)(None)
        assert everything.sessions == {f"s{i}{x}" for i in range(4) for x in "ab"}


def _literal(value: Any) -> str:
    if isinstance(value, timedelta):
        return f"interval '{value.total_seconds()} seconds'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return str(int(value))


async def indexes_of_generic_plan(db: async_sessionmaker[AsyncSession], statement: Any) -> set[str]:
    """The indexes of the plan PostgreSQL keeps for ``statement`` once it plans it without
    its parameters' values (a prepared statement's generic plan, as asyncpg's may get)."""
    async with db() as session, session.begin():
        dialect = (await session.connection()).dialect
        compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        args = ", ".join(_literal(compiled.params[name]) for name in compiled.positiontup)
        await session.execute(text("SET LOCAL plan_cache_mode = force_generic_plan"))
        raw = (await (await session.connection()).get_raw_connection()).driver_connection
        assert raw is not None
        await raw.execute(f"PREPARE pending_page AS {compiled.string}")
        plan = await raw.fetchval(f"EXPLAIN (FORMAT JSON) EXECUTE pending_page({args})")
        await raw.execute("DEALLOCATE pending_page")
    plan = orjson.loads(plan) if isinstance(plan, str) else plan
    found: set[str] = set()

    def walk(node: dict[str, Any]) -> None:
        if "Index Name" in node:
            found.add(node["Index Name"])
        for child in node.get("Plans", ()):
            walk(child)

    walk(plan[0]["Plan"])
    return found


class TestPendingAccessReads:
    async def test_a_page_walks_the_access_rows_index_not_past_the_cache_bumps(
        self, db: async_sessionmaker[AsyncSession], settings: Settings
    ) -> None:
        """A long Redis outage leaves many cache bumps pending: a page reads the rows that
        take access away by their partial index (migration 0012), whatever the values of
        its parameters."""
        async with db() as session, session.begin():
            await session.execute(
                text(
                    "INSERT INTO pending_invalidations (kind, payload, due_at)"
                    " SELECT :kind, jsonb_build_object('workspace_id', gen_random_uuid()),"
                    " now() + interval '1 hour' FROM generate_series(1, 20000)"
                ),
                {"kind": "workspace_cache"},
            )
        await keep(db, revocation.SESSIONS, {"sids": ["s1"]})
        await keep(db, acl.FORGET, {"workspace_id": str(uuid.uuid4()), "user_ids": ["u1"]})
        async with db() as session:
            await session.execute(text("ANALYZE pending_invalidations"))
        statement = channels_handlers.pending_rows(settings, 0)
        assert await indexes_of_generic_plan(db, statement) == {"ix_pending_invalidations_access"}
