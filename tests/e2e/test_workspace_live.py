"""Issue 5's whole flows on the real domain: two users, a workspace, resources changing
over WebSocket RPC, and what each one's socket sees."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from nats.aio.client import Client as NATS

from hub.ws.service import Realtime
from hubbub.client import HubbubClient, RemoteError
from hubbub.config import Settings
from hubbub.contracts.channels import ChannelKind
from hubbub.contracts.subjects import Subjects
from hubbub.streams import ensure_streams
from tests.e2e.conftest import ClientFactory, People


async def retitle(client: HubbubClient, ws: str, resource: dict[str, Any], times: int) -> None:
    """``times`` changes of one resource over RPC: titles v2, v3, …, each at its version."""
    version = resource["version"]
    for n in range(times):
        updated = await client.rpc(
            "resources.update",
            {
                "workspace_id": ws,
                "resource_id": resource["id"],
                "title": f"v{n + 2}",
                "expected_version": version,
            },
        )
        version = updated["version"]


async def next_event(sub: Any, timeout: float = 5.0) -> Any:
    return (await asyncio.wait_for(sub.queue.get(), timeout)).data


async def published(sub: Any, title: str) -> None:
    """Barrier: wait until the live subscription ``sub`` gets the change titled ``title``.
    An RPC's answer comes after its commit, its event a moment later from the outbox
    relay; once a live subscriber has it, the stream holds every change before it."""
    while (await next_event(sub))["data"]["title"] != title:
        pass


class TestTwoUsers:
    async def test_b_is_refused_then_added_then_sees_a_s_changes_at_once_then_is_removed(
        self, client: ClientFactory, people: People
    ) -> None:
        """B can't subscribe to A's workspace; A adds B (RPC) and B accepts; B subscribes
        and gets A's five resource.created, in order, and nothing from before he joined;
        A removes B; B gets `unsubscribed` at once. (How soon an event arrives is for the
        benchmarks, not asserted here.)"""
        ann, bob = await people.user("ann"), await people.user("bob")
        a, b = await client(ann), await client(bob)
        ws = (await a.rpc("workspaces.create", {"name": "Live"}))["id"]
        channel = f"workspace:{ws}"
        with pytest.raises(RemoteError) as refused:
            await b.subscribe(channel)
        assert refused.value.code == "forbidden"

        bob_email = (await b.rpc("users.me"))["email"]
        await a.rpc("members.add", {"workspace_id": ws, "email": bob_email, "role": "member"})
        await people.accept(bob, bob_email)  # members.add invites; B joins by accepting
        # Every event so far (the workspace's, B's invitation and joining) is published:
        # none of them can reach B as a live one after he subscribes.
        await people.relayed(channel)
        sub = await b.subscribe(channel)
        assert sub.queue.empty()  # nothing from before he subscribed is replayed to him

        made = [
            await a.rpc("resources.create", {"workspace_id": ws, "kind": "task", "title": f"t{n}"})
            for n in range(5)
        ]
        events = [await next_event(sub) for _ in made]
        assert [(e["type"], e["data"]["id"]) for e in events] == [
            ("resource.created", m["id"]) for m in made
        ]

        await a.rpc("members.remove", {"workspace_id": ws, "user_id": bob})
        while True:
            push = await asyncio.wait_for(b.pushes.get(), 5)
            if push["push"] == "unsubscribed" and push["channel"] == channel:
                break
        assert push["code"] == 4003
        assert channel not in b.subscriptions


class TestCatchingUp:
    async def test_b_recovers_a_s_hundred_changes_in_order_after_a_disconnect(
        self, client: ClientFactory, people: People
    ) -> None:
        ann, bob = await people.user("ann"), await people.user("bob")
        ws = await people.workspace(ann, (bob, "member"))
        a, b = await client(ann), await client(bob)
        sub = await b.subscribe(f"workspace:{ws}")
        first = await a.rpc("resources.create", {"workspace_id": ws, "kind": "note", "title": "v1"})
        assert (await next_event(sub))["data"]["id"] == first["id"]
        since = (sub.offset, sub.epoch or "")
        await b.close()
        watch = await a.subscribe(f"workspace:{ws}")

        await retitle(a, ws, first, 100)
        await published(watch, "v101")

        again = await client(bob)
        resumed = await again.subscribe(f"workspace:{ws}", since=since)
        events = [resumed.queue.get_nowait().data for _ in range(resumed.queue.qsize())]
        assert [e["data"]["title"] for e in events] == [f"v{n + 2}" for n in range(100)]
        assert [e["data"]["version"] for e in events] == list(range(2, 102))
        assert resumed.resets == 0  # recovered: true

    async def test_with_a_history_of_ten_the_gap_is_not_recovered(
        self,
        client: ClientFactory,
        people: People,
        nc: NATS,
        settings: Settings,
        realtime: Realtime,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        small = settings.model_copy(
            update={"channel_policies": {"workspace": {"history_max_msgs": 10}}}
        )
        await ensure_streams(nc.jetstream(), Subjects(settings.namespace), small.policies())
        # The hub runs with the stream's policy, as deployed (both come from the same
        # settings): its feeds keep no more of a channel than its history does.
        kind = ChannelKind.WORKSPACE
        monkeypatch.setitem(realtime.fanout.policies, kind, small.policies()[kind])
        ann, bob = await people.user("ann"), await people.user("bob")
        ws = await people.workspace(ann, (bob, "member"))
        a, b = await client(ann), await client(bob)
        sub = await b.subscribe(f"workspace:{ws}")
        first = await a.rpc("resources.create", {"workspace_id": ws, "kind": "note", "title": "v1"})
        await next_event(sub)
        since = (sub.offset, sub.epoch or "")
        await b.close()
        watch = await a.subscribe(f"workspace:{ws}")
        await retitle(a, ws, first, 100)
        await published(watch, "v101")
        reloads: list[str] = []
        again = await client(bob)
        resumed = await again.subscribe(
            f"workspace:{ws}", since=since, on_reset=lambda s: reloads.append(s.channel)
        )
        assert reloads == [f"workspace:{ws}"]  # recovered: false → the app reloads over REST
        assert resumed.queue.qsize() == 0
