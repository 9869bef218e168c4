"""channels.authorize for workspace and chat channels: answered from membership, cached
in Redis, and forgotten (with a membership_revoked or membership_changed message) when
membership changes."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient
from nats.aio.client import Client as NATS
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hubbub.bus import Bus
from hubbub.config import Settings
from hubbub.contracts.api import channels as channels_api
from hubbub.contracts.subjects import Subjects
from hubbub.keys import RedisKeys
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
