"""The realtime hub end to end: real sockets, real NATS/JetStream, Redis and a worker."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import orjson
import pytest
from nats.aio.client import Client as NATS

from hub.ws.service import Realtime
from hub.ws.sessions import DEADLINE_RESOLUTION_S
from hubbub.client import HubbubClient, RemoteError
from hubbub.config import Settings
from hubbub.contracts.api import default_catalog
from hubbub.contracts.asyncapi import build_document
from hubbub.contracts.channels import Channel
from hubbub.contracts.subjects import Subjects
from tests.e2e.conftest import ClientFactory, People
from tests.support import ops
from tests.support.clients import first_close
from tests.support.tokens import TestTokens
from tests.support.waiting import wait_for
from workers.app import RunningWorker


async def publish(nc: NATS, settings: Settings, channel: str, data: dict[str, Any]) -> int:
    """What a backend service does: publish straight onto the channel's subject."""
    ack = await nc.jetstream().publish(
        Subjects(settings.namespace).event(Channel.parse(channel)), orjson.dumps(data)
    )
    return int(ack.seq)


def chat_message_schema() -> dict[str, Any]:
    """The AsyncAPI document's schema of what ``chat:`` channels carry from clients."""
    document = build_document(default_catalog())
    refs = document["channels"]["chat"]["messages"].values()
    keys = [ref["$ref"].rsplit("/", 1)[1] for ref in refs]
    assert keys == ["chat_message"]
    payload: dict[str, Any] = document["components"]["messages"]["chat_message"]["payload"]
    return payload


async def next_pub(sub: Any, timeout: float = 5.0) -> Any:
    return await asyncio.wait_for(sub.queue.get(), timeout)


async def raw_socket(url: str, session: aiohttp.ClientSession) -> aiohttp.ClientWebSocketResponse:
    return await session.ws_connect(url, protocols=("hubbub.v1.json",), max_msg_size=0)


async def receive_json(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5.0) -> Any:
    msg = await ws.receive(timeout=timeout)
    assert msg.type is aiohttp.WSMsgType.TEXT, msg
    return orjson.loads(msg.data)


class TestConnect:
    async def test_connect_answers_with_the_client_and_its_clocks(
        self, ws_url: str, tokens: TestTokens
    ) -> None:
        async with aiohttp.ClientSession() as session:
            ws = await raw_socket(ws_url, session)
            await ws.send_str(
                orjson.dumps({"id": 1, "op": "connect", "token": tokens.issue("u1")}).decode()
            )
            reply = await receive_json(ws)
            assert reply["id"] == 1
            assert reply["result"]["user"] == {"id": "u1", "role": "member"}
            assert reply["result"]["ping_interval"] == 25
            assert 890 <= reply["result"]["expires_in"] <= 900
            assert len(reply["result"]["client"]) == 16

    async def test_a_bad_token_gets_an_error_then_close_4001(self, ws_url: str) -> None:
        async with aiohttp.ClientSession() as session:
            ws = await raw_socket(ws_url, session)
            await ws.send_str('{"id": 1, "op": "connect", "token": "not-a-jwt"}')
            error = await receive_json(ws)
            assert (error["id"], error["error"]["code"]) == (1, "unauthorized")
            disconnect = await receive_json(ws)
            assert disconnect == {
                "push": "disconnect",
                "code": 4001,
                "reason": error["error"]["message"],
                "reconnect": True,
            }
            closing = await ws.receive(timeout=5)
            assert (closing.type, ws.close_code) == (aiohttp.WSMsgType.CLOSE, 4001)

    async def test_no_connect_in_time_closes_4001(self, ws_url: str) -> None:
        """The e2e settings give a socket 1 s to send connect."""
        async with aiohttp.ClientSession() as session:
            ws = await raw_socket(ws_url, session)
            msg = await ws.receive(timeout=10)
            while msg.type is aiohttp.WSMsgType.TEXT:
                msg = await ws.receive(timeout=10)
            assert ws.close_code == 4001

    async def test_a_first_frame_other_than_connect_closes_4001(self, ws_url: str) -> None:
        async with aiohttp.ClientSession() as session:
            ws = await raw_socket(ws_url, session)
            await ws.send_str('{"id": 1, "op": "subscribe", "channel": "public:x"}')
            assert (await receive_json(ws))["push"] == "disconnect"
            await ws.receive(timeout=5)
            assert ws.close_code == 4001

    async def test_without_the_subprotocol_the_upgrade_is_refused_with_a_problem(
        self, ws_url: str
    ) -> None:
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                ws_url.replace("ws://", "http://"),
                headers={"Connection": "Upgrade", "Upgrade": "websocket"},
            ) as response,
        ):
            assert response.status == 400
            assert "hubbub.v1.json" in (await response.json())["detail"]

    async def test_a_foreign_origin_is_refused(self, ws_url: str) -> None:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
                await session.ws_connect(
                    ws_url, protocols=("hubbub.v1.json",), origin="https://evil.example"
                )
            assert caught.value.status == 403


class TestChannelsAndFanOut:
    async def test_a_user_channel_is_its_owners_only(self, client: ClientFactory) -> None:
        alice = await client("alice")
        await alice.subscribe("user:alice")
        with pytest.raises(RemoteError) as caught:
            await alice.subscribe("user:bob")
        assert (caught.value.code, caught.value.status) == ("forbidden", 403)

    async def test_a_backend_publication_reaches_every_subscriber_in_order(
        self, client: ClientFactory, nc: NATS, settings: Settings
    ) -> None:
        subs = [await (await client(f"u{i}")).subscribe("public:news") for i in range(3)]
        offsets = [await publish(nc, settings, "public:news", {"n": n}) for n in range(20)]
        for sub in subs:
            got = [await next_pub(sub) for _ in range(20)]
            assert [p.offset for p in got] == offsets
            assert [p.data for p in got] == [{"n": n} for n in range(20)]

    async def test_workspace_channels_need_membership_checked_by_a_worker(
        self, client: ClientFactory, people: People, nc: NATS, settings: Settings
    ) -> None:
        ann, bob = await people.user("ann"), await people.user("bob")
        ws = await people.workspace(ann)
        b = await client(bob)
        with pytest.raises(RemoteError) as caught:
            await b.subscribe(f"workspace:{ws}")
        assert caught.value.code == "forbidden"
        # The refusal was cached; bob joining drops it, so he gets in at once.
        email = (await people.call(bob, "GET", "/users/me"))["email"]
        await people.call(ann, "POST", f"/workspaces/{ws}/members", {"email": email})
        await people.accept(bob, email)
        sub = await b.subscribe(f"workspace:{ws}")
        made = await people.call(
            ann, "POST", f"/workspaces/{ws}/resources", {"kind": "task", "title": "hi"}
        )
        event = (await next_pub(sub)).data
        # The invitation and bob's joining are relayed from the outbox on their
        # own time, so their events may reach him after he subscribed; they
        # come first, in commit order.
        while event["type"] in ("invitation.created", "member.added"):
            event = (await next_pub(sub)).data
        assert (event["type"], event["data"]["id"], event["data"]["version"]) == (
            "resource.created",
            made["id"],
            1,
        )

    async def test_viewers_read_chat_but_only_members_publish(
        self, client: ClientFactory, people: People
    ) -> None:
        ann, vic = await people.user("ann"), await people.user("vic")
        ws = await people.workspace(ann, (vic, "viewer"))
        a, v = await client(ann), await client(vic)
        sub = await v.subscribe(f"chat:{ws}")
        await a.publish(f"chat:{ws}", {"text": "hello"})
        assert (await next_pub(sub)).data["data"] == {"text": "hello"}
        with pytest.raises(RemoteError) as caught:
            await v.publish(f"chat:{ws}", {"text": "me too"})
        assert caught.value.code == "forbidden"

    async def test_a_chat_publication_arrives_wrapped_as_the_asyncapi_chat_message(
        self, client: ClientFactory, people: People
    ) -> None:
        """What a member publishes reaches subscribers inside the hub's wrapper: who sent
        it and when, its ``data`` as sent; the AsyncAPI document describes exactly that."""
        ann = await people.user("ann")
        ws = await people.workspace(ann)
        a = await client(ann)
        sub = await a.subscribe(f"chat:{ws}")
        before = time.time()

        await a.publish(f"chat:{ws}", {"text": "hello"})

        data = (await next_pub(sub)).data
        schema = chat_message_schema()
        assert set(data) == set(schema["required"]) == set(schema["properties"])
        assert data["type"] == schema["properties"]["type"]["const"]
        assert (data["from"], data["data"]) == (ann, {"text": "hello"})
        assert before - 1 <= data["at"] <= time.time() + 1

    async def test_interest_based_nats_subscriptions_come_and_go(
        self, client: ClientFactory, realtime: Realtime
    ) -> None:
        a, b = await client("a"), await client("b")
        await a.subscribe("public:x")
        await b.subscribe("public:x")
        assert list(realtime.fanout.names()) == ["public:x"]
        await a.unsubscribe("public:x")
        assert list(realtime.fanout.names()) == ["public:x"]
        await b.unsubscribe("public:x")
        assert list(realtime.fanout.names()) == []

    async def test_a_non_json_publication_is_dropped_not_passed_on(
        self, client: ClientFactory, nc: NATS, settings: Settings
    ) -> None:
        sub = await (await client("u")).subscribe("public:raw")
        subject = Subjects(settings.namespace).event(Channel.parse("public:raw"))
        await nc.jetstream().publish(subject, b"not json")
        good = await publish(nc, settings, "public:raw", {"ok": True})
        first = await next_pub(sub)
        assert (first.offset, first.data) == (good, {"ok": True})


class HistoryReads:
    """The hub's history reads from here on (they still go to JetStream), by name."""

    def __init__(self, realtime: Realtime, monkeypatch: pytest.MonkeyPatch) -> None:
        self.made: list[str] = []
        history = realtime.history
        for name in ("holds", "after"):
            monkeypatch.setattr(history, name, self._noting(name, getattr(history, name)))

    def _noting(self, name: str, read: Any) -> Any:
        async def noted(*args: Any, **kwargs: Any) -> Any:
            self.made.append(name)
            return await read(*args, **kwargs)

        return noted


async def missed_while_kept(
    client: ClientFactory, nc: NATS, settings: Settings, channel: str, count: int
) -> tuple[tuple[int, str], list[int]]:
    """Client "b" sees one publication on ``channel`` and leaves; ``count`` more are
    published while another socket keeps the hub's feed of it, and that socket gets
    them all. Returns b's ``since`` and the offsets it missed."""
    keeper = await (await client("k")).subscribe(channel)
    b = await client("b")
    sub = await b.subscribe(channel)
    await publish(nc, settings, channel, {"n": -1})
    assert (await next_pub(sub)).data == {"n": -1}
    since = (sub.offset, sub.epoch or "")
    await b.close()
    offsets = [await publish(nc, settings, channel, {"n": n}) for n in range(count)]
    for n in [-1, *range(count)]:
        assert (await next_pub(keeper)).data == {"n": n}  # the feed passed them on
    return since, offsets


class TestRecovery:
    async def test_a_reconnecting_client_gets_every_missed_publication_once_in_order(
        self, client: ClientFactory, nc: NATS, settings: Settings
    ) -> None:
        b = await client("b")
        sub = await b.subscribe("public:feed")
        await publish(nc, settings, "public:feed", {"n": -1})
        assert (await next_pub(sub)).data == {"n": -1}
        since = (sub.offset, sub.epoch or "")
        await b.close()
        offsets = [await publish(nc, settings, "public:feed", {"n": n}) for n in range(100)]
        again = await client("b")
        resub = await again.subscribe("public:feed", since=since)
        got = [resub.queue.get_nowait() for _ in range(resub.queue.qsize())]
        assert [p.offset for p in got] == offsets
        assert [p.data["n"] for p in got] == list(range(100))
        assert resub.resets == 0

    async def test_a_channel_the_hub_kept_listening_to_is_recovered_from_memory(
        self,
        client: ClientFactory,
        nc: NATS,
        settings: Settings,
        realtime: Realtime,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Another socket kept the hub's feed of the channel: the feed's tail answers the
        resubscribe, and history is not read at all."""
        since, offsets = await missed_while_kept(client, nc, settings, "public:kept", 100)
        reads = HistoryReads(realtime, monkeypatch)

        again = await client("b")
        resub = await again.subscribe("public:kept", since=since)

        got = [resub.queue.get_nowait() for _ in range(resub.queue.qsize())]
        assert [p.offset for p in got] == offsets
        assert [p.data["n"] for p in got] == list(range(100))
        assert resub.resets == 0
        assert reads.made == []

    async def test_a_since_older_than_the_tail_is_read_from_history(
        self,
        client: ClientFactory,
        nc: NATS,
        settings: Settings,
        realtime: Realtime,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        # The hub's tails may keep about three of these publications between them.
        monkeypatch.setattr(realtime.fanout.tail_budget, "limit", 3 * len(b'{"n":10}'))
        since, offsets = await missed_while_kept(client, nc, settings, "public:long", 20)
        reads = HistoryReads(realtime, monkeypatch)

        again = await client("b")
        resub = await again.subscribe("public:long", since=since)

        got = [resub.queue.get_nowait() for _ in range(resub.queue.qsize())]
        assert [p.offset for p in got] == offsets
        assert resub.resets == 0
        assert reads.made == ["holds", "after"]

    async def test_stored_data_that_is_not_a_json_object_is_never_replayed(
        self, client: ClientFactory, nc: NATS, settings: Settings
    ) -> None:
        """History and recovery check stored bytes as live delivery does."""
        b = await client("b")
        sub = await b.subscribe("public:mixed")
        await publish(nc, settings, "public:mixed", {"n": -1})
        await next_pub(sub)
        since = (sub.offset, sub.epoch or "")
        await b.close()
        subject = Subjects(settings.namespace).event(Channel.parse("public:mixed"))
        js = nc.jetstream()
        for bad in (b"[1, 2]", b'"text"', b"not json"):
            await js.publish(subject, bad)
        good = await publish(nc, settings, "public:mixed", {"n": 0})
        again = await client("b")
        resub = await again.subscribe("public:mixed", since=since)
        got = [resub.queue.get_nowait() for _ in range(resub.queue.qsize())]
        assert [(p.offset, p.data) for p in got] == [(good, {"n": 0})]
        page = await again.history("public:mixed")
        assert [p["data"] for p in page["publications"]] == [{"n": -1}, {"n": 0}]

    async def test_a_gap_bigger_than_the_history_is_not_recovered(
        self, client: ClientFactory, nc: NATS, settings: Settings, realtime: Realtime
    ) -> None:
        from hubbub.streams import ensure_streams

        small = settings.model_copy(
            update={"channel_policies": {"public": {"history_max_msgs": 10}}}
        )
        await ensure_streams(nc.jetstream(), Subjects(settings.namespace), small.policies())
        b = await client("b")
        sub = await b.subscribe("public:small")
        await publish(nc, settings, "public:small", {"n": -1})
        await next_pub(sub)
        since = (sub.offset, sub.epoch or "")
        await b.close()
        # Nobody listens: the hub keeps no tail of the channel, only history has the gap.
        await wait_for(lambda: "public:small" not in realtime.fanout.feeds)
        for n in range(100):
            await publish(nc, settings, "public:small", {"n": n})
        reloads: list[str] = []
        again = await client("b")
        resub = await again.subscribe(
            "public:small", since=since, on_reset=lambda s: reloads.append(s.channel)
        )
        assert reloads == ["public:small"]
        assert resub.queue.qsize() == 0

    async def test_the_client_resubscribes_with_since_after_a_dropped_socket(
        self, client: ClientFactory, nc: NATS, settings: Settings
    ) -> None:
        b = await client("b", backoff_min=0.01)
        sub = await b.subscribe("public:drop")
        await publish(nc, settings, "public:drop", {"n": 0})
        await next_pub(sub)
        await b.drop()
        offsets = [await publish(nc, settings, "public:drop", {"n": n}) for n in range(1, 30)]
        got = [await next_pub(sub) for _ in range(29)]
        assert [p.offset for p in got] == offsets
        assert b.reconnects >= 1
        assert sub.resets == 0


class TestRpc:
    async def test_an_rpc_returns_the_operations_result(self, client: ClientFactory) -> None:
        c = await client("u")
        assert await c.rpc("test.echo", {"key": "k", "seq": 5}) == {
            "key": "k",
            "seq": 5,
            "payload": {},
        }

    async def test_rpc_errors_carry_the_rest_status(self, client: ClientFactory) -> None:
        c = await client("u")
        with pytest.raises(RemoteError) as bad:
            await c.rpc("test.echo", {"seq": "five"})
        with pytest.raises(RemoteError) as unknown:
            await c.rpc("nothing.here")
        with pytest.raises(RemoteError) as internal_only:
            await c.rpc("channels.authorize", {"user_id": "u", "channel": "workspace:w"})
        assert (bad.value.code, bad.value.status) == ("validation_failed", 422)
        assert (unknown.value.code, internal_only.value.code) == ("not_found", "not_found")

    async def test_an_unanswered_mutation_is_resent_after_reconnect_and_applied_once(
        self, client: ClientFactory, worker: RunningWorker
    ) -> None:
        """The socket drops while the worker is in the middle of the call (held after
        claiming its key): the client sends it again on its new socket, and that one is
        answered with the first call's result; the handler ran once."""
        c = await client("u", backoff_min=0.01)
        call = asyncio.ensure_future(c.rpc("test.held_emit", {"workspace": "w", "note": "once"}))
        await wait_for(lambda: ops.hold.arrived == ["once"], what="the worker in the middle")
        await c.drop()
        # Sent again on the new socket, it waits in the key's actor behind the held one.
        await wait_for(lambda: worker.service.actors.in_flight == 2, what="the call sent again")
        assert not call.done()
        ops.hold.open()
        result = await asyncio.wait_for(call, 10)
        assert result["count"] == 1
        assert ops.emit_calls == ["once"]
        assert ops.hold.arrived == ["once"]  # the call sent again did not run the handler


class TestTokenLifetime:
    async def test_expiring_then_refresh_keeps_the_socket(
        self, client: ClientFactory, realtime: Realtime
    ) -> None:
        realtime.settings = realtime.settings.model_copy(update={"ws_expiring_lead_s": 1.5})
        c = await client("u", ttl=2)
        (conn,) = realtime.connections
        first_expiry = conn.expire_at  # the first token's end and grace, by the hub's clock
        push = await asyncio.wait_for(c.pushes.get(), 5)
        assert push["push"] == "expiring"
        # The hub's clock is this loop's: past the first token's deadline (which fires up
        # to one resolution late), it would have closed the socket by now...
        loop = asyncio.get_running_loop()
        await wait_for(
            lambda: loop.time() > first_expiry + DEADLINE_RESOLUTION_S,
            what="the first token's deadline past",
        )
        # ...and a close sent then comes before this reply, on the same socket.
        assert await c.rpc("test.echo", {}) is not None
        assert c.closes == []

    async def test_a_refresh_with_another_users_token_is_forbidden_and_changes_nothing(
        self, ws_url: str, tokens: TestTokens
    ) -> None:
        async with aiohttp.ClientSession() as session:
            ws = await raw_socket(ws_url, session)
            await ws.send_str(
                orjson.dumps({"id": 1, "op": "connect", "token": tokens.issue("u1")}).decode()
            )
            assert "result" in await receive_json(ws)
            await ws.send_str(
                orjson.dumps({"id": 2, "op": "refresh", "token": tokens.issue("u2")}).decode()
            )
            refused = await receive_json(ws)
            assert (refused["id"], refused["error"]["code"]) == (2, "forbidden")
            # Still u1's socket: u1's own channel, not u2's.
            await ws.send_str(
                orjson.dumps(
                    [
                        {"id": 3, "op": "subscribe", "channel": "user:u2"},
                        {"id": 4, "op": "subscribe", "channel": "user:u1"},
                    ]
                ).decode()
            )
            replies = {r["id"]: r for r in [await receive_json(ws), await receive_json(ws)]}
            assert replies[3]["error"]["code"] == "forbidden"
            assert replies[4]["result"]["channel"] == "user:u1"

    async def test_an_unrefreshed_token_closes_the_socket_with_4001(
        self, ws_url: str, tokens: TestTokens
    ) -> None:
        async with aiohttp.ClientSession() as session:
            ws = await raw_socket(ws_url, session)
            await ws.send_str(
                orjson.dumps({"id": 1, "op": "connect", "token": tokens.issue("u", ttl=1)}).decode()
            )
            frames = []
            while True:
                msg = await ws.receive(timeout=10)
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    break
                frames.append(orjson.loads(msg.data))
            assert ws.close_code == 4001
            assert [f.get("push") for f in frames[1:]] == ["expiring", "disconnect"]


class TestLiveness:
    async def test_websocket_pings_are_not_heard_from_and_a_silent_socket_is_cut(
        self, ws_url: str, tokens: TestTokens, realtime: Realtime
    ) -> None:
        """Only frames of the protocol count: a client whose last text frame was two ping
        intervals ago is dropped even though it kept sending WebSocket-level pings (the
        server answers those itself). The connection is cut: no close frame, no
        ``disconnect`` push."""
        interval = realtime.settings.ws_ping_interval_s
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(ws_url, protocols=("hubbub.v1.json",), autoping=False)
            await ws.send_str(
                orjson.dumps({"id": 1, "op": "connect", "token": tokens.issue("u1")}).decode()
            )
            assert "result" in await receive_json(ws)
            (conn,) = realtime.connections
            conn.last_seen -= 2 * interval + 1  # its connect, as if that long ago
            await ws.ping(b"still here")
            pong = await ws.receive(timeout=5)
            assert (pong.type, pong.data) == (aiohttp.WSMsgType.PONG, b"still here")

            realtime.ping_all(time.monotonic(), interval)

            end = await ws.receive(timeout=5)
            assert end.type is aiohttp.WSMsgType.CLOSED  # nothing before it: no push
            assert ws.close_code == aiohttp.WSCloseCode.ABNORMAL_CLOSURE  # no close frame
            assert conn.closed


class TestPresence:
    async def test_join_and_leave_are_pushed_and_members_listed(
        self, client: ClientFactory, people: People
    ) -> None:
        ua, ub = await people.user("a"), await people.user("b")
        ws = await people.workspace(ua, (ub, "member"))
        a, b = await client(ua), await client(ub)
        await a.subscribe(f"workspace:{ws}")
        await b.subscribe(f"workspace:{ws}")
        members = await a.presence(f"workspace:{ws}")
        assert sorted(m["user"] for m in members) == sorted([ua, ub])
        joins: list[str] = []
        while len(joins) < 2:
            push = await asyncio.wait_for(a.pushes.get(), 5)
            if push["push"] == "presence":
                assert push["channel"] == f"workspace:{ws}"
                joins += [info["user"] for info in push["joined"]]
        assert sorted(joins) == sorted([ua, ub])
        await b.close()
        while True:
            push = await asyncio.wait_for(a.pushes.get(), 5)
            if push["push"] == "presence" and push["left"]:
                assert push == {
                    "push": "presence",
                    "channel": f"workspace:{ws}",
                    "joined": [],
                    "left": [{"user": ub, "client": b.client_id}],
                }
                break
        assert [m["user"] for m in await a.presence(f"workspace:{ws}")] == [ua]


async def control(nc: NATS, settings: Settings, user_id: str, message: dict[str, Any]) -> None:
    """What a worker does after revoking something: a message on ctl.user.<id>."""
    await nc.publish(Subjects(settings.namespace).control_user(user_id), orjson.dumps(message))


class TestControl:
    async def test_removal_from_the_workspace_unsubscribes_at_once(
        self, client: ClientFactory, people: People
    ) -> None:
        """A real removal: the worker publishes membership_revoked after its commit."""
        ann, bob = await people.user("ann"), await people.user("bob")
        ws = await people.workspace(ann, (bob, "member"))
        b = await client(bob)
        await b.subscribe(f"workspace:{ws}")
        await b.subscribe(f"chat:{ws}")
        await people.call(ann, "DELETE", f"/workspaces/{ws}/members/{bob}")
        dropped = []
        while len(dropped) < 2:
            push = await asyncio.wait_for(b.pushes.get(), 5)
            if push["push"] == "unsubscribed":
                dropped.append(push)
        assert sorted(p["channel"] for p in dropped) == sorted([f"workspace:{ws}", f"chat:{ws}"])
        assert {(p["code"], p["reason"]) for p in dropped} == {
            (4003, "your membership was removed")
        }
        assert b.subscriptions.keys() & {f"workspace:{ws}", f"chat:{ws}"} == set()
        with pytest.raises(RemoteError) as caught:
            await b.subscribe(f"workspace:{ws}")
        assert caught.value.code == "forbidden"

    async def test_a_deactivated_user_is_disconnected_for_good(
        self, client: ClientFactory, nc: NATS, settings: Settings
    ) -> None:
        b = await client("b")
        await control(
            nc, settings, "b", {"type": "deactivated", "user_id": "b", "until": time.time() + 60}
        )
        assert await first_close(b) == 4003

    async def test_a_revoked_session_is_disconnected_and_cannot_connect_again(
        self, client: ClientFactory, nc: NATS, settings: Settings, tokens: TestTokens, ws_url: str
    ) -> None:
        token = tokens.issue("c", sid="session-1")
        c = await client("c", connect=False)
        c.token_provider = lambda: _const(token)
        await c.connect()
        await control(
            nc,
            settings,
            "c",
            {
                "type": "sessions_revoked",
                "user_id": "c",
                "sids": ["session-1"],
                "until": time.time() + 60,
            },
        )
        assert await first_close(c) == 4001
        async with aiohttp.ClientSession() as session:
            ws = await raw_socket(ws_url, session)
            await ws.send_str(orjson.dumps({"id": 1, "op": "connect", "token": token}).decode())
            reply = await receive_json(ws)
            assert reply["error"]["details"]["reason"] == "revoked"


async def _const(value: str) -> str:
    return value


class TestShutdown:
    async def test_draining_tells_clients_to_reconnect_elsewhere(
        self, client: ClientFactory, realtime: Realtime
    ) -> None:
        c = await client("u")
        start = time.monotonic()
        await realtime.shutdown(5)
        assert time.monotonic() - start < 5
        push = await asyncio.wait_for(c.pushes.get(), 5)
        assert push == {
            "push": "disconnect",
            "code": 1001,
            "reason": "hub shutting down; reconnect",
            "reconnect": True,
        }
        assert realtime.connections == set()


class TestHubbubClientIsExported:
    def test_the_client_is_importable_from_the_package(self) -> None:
        assert HubbubClient.__module__ == "hubbub.client.client"
