"""Several hubs: clients on different hubs see the same channels, and the clients of a
hub that dies (SIGKILL) reconnect to another and recover every publication."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
from nats.aio.client import Client as NATS

from cli.embedded.process import die_with_parent
from hubbub.client import HubbubClient
from hubbub.config import Settings
from tests.e2e.test_realtime import publish
from tests.support.http import wait_until_200
from tests.support.ports import quiet_port
from tests.support.processes import ROOT, settings_env
from tests.support.tokens import TestTokens

pytestmark = pytest.mark.slow


class HubProcess:
    def __init__(self, settings: Settings, port: int) -> None:
        self.port = port
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "serve", "--port", str(self.port)],
            cwd=ROOT,
            preexec_fn=die_with_parent(),
            env=settings_env(settings, HUBBUB_ACCESS_LOG="false"),
        )

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    async def wait_healthy(self, timeout: float = 30) -> None:
        url = f"http://127.0.0.1:{self.port}/api/v1/health"
        await wait_until_200(url, timeout=timeout, processes=[self.proc], what="the hub started")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
async def hubs(settings: Settings, nc: NATS, worker: Any) -> AsyncIterator[list[HubProcess]]:
    first = quiet_port(2)
    started = [HubProcess(settings, first), HubProcess(settings, first + 1)]
    try:
        await asyncio.gather(*(h.wait_healthy() for h in started))
        yield started
    finally:
        for hub in started:
            hub.stop()


class TestTwoHubs:
    async def test_a_hubs_clients_fail_over_after_sigkill_and_recover_everything(
        self, hubs: list[HubProcess], settings: Settings, nc: NATS
    ) -> None:
        tokens = TestTokens(settings)
        a = HubbubClient(hubs[0].ws, tokens.issue("a"), backoff_min=0.02)
        b = HubbubClient([hubs[1].ws, hubs[0].ws], tokens.issue("b"), backoff_min=0.02)
        try:
            await a.connect()
            await b.connect()
            sub_a = await a.subscribe("public:failover")
            sub_b = await b.subscribe("public:failover")
            offsets = []
            for n in range(300):
                offsets.append(await publish(nc, settings, "public:failover", {"n": n}))
                if n == 100:
                    hubs[1].proc.send_signal(signal.SIGKILL)
                await asyncio.sleep(0.005)

            async def everything(sub: Any) -> list[int]:
                got: list[int] = []
                while len(got) < len(offsets):
                    got.append((await asyncio.wait_for(sub.queue.get(), 20)).offset)
                return got

            assert await everything(sub_a) == offsets
            assert await everything(sub_b) == offsets  # once each, in order, none missing
            assert b.url == hubs[0].ws
            assert b.reconnects >= 1
            assert sub_b.resets == 0
        finally:
            await a.close()
            await b.close()

    async def test_both_hubs_deliver_the_same_channel(
        self, hubs: list[HubProcess], settings: Settings, nc: NATS
    ) -> None:
        tokens = TestTokens(settings)
        on_first = HubbubClient(hubs[0].ws, tokens.issue("x"))
        on_second = HubbubClient(hubs[1].ws, tokens.issue("y"))
        try:
            await on_first.connect()
            await on_second.connect()
            subs = [
                await on_first.subscribe("public:both"),
                await on_second.subscribe("public:both"),
            ]
            offset = await publish(nc, settings, "public:both", {"hello": "hubs"})
            for sub in subs:
                got = await asyncio.wait_for(sub.queue.get(), 10)
                assert (got.offset, got.data) == (offset, {"hello": "hubs"})
        finally:
            await on_first.close()
            await on_second.close()

    async def test_a_draining_hub_sends_its_clients_to_another_with_1001(
        self, hubs: list[HubProcess], settings: Settings, nc: NATS
    ) -> None:
        """SIGTERM: the hub stops accepting, tells each socket `disconnect` 1001 with
        reconnect true, closes them and exits; the client carries on at the other hub."""
        tokens = TestTokens(settings)
        client = HubbubClient([hubs[1].ws, hubs[0].ws], tokens.issue("d"), backoff_min=0.02)
        try:
            await client.connect()
            sub = await client.subscribe("public:drain")
            hubs[1].proc.send_signal(signal.SIGTERM)
            push = await asyncio.wait_for(client.pushes.get(), 10)
            assert push == {
                "push": "disconnect",
                "code": 1001,
                "reason": "hub shutting down; reconnect",
                "reconnect": True,
            }
            assert await asyncio.to_thread(hubs[1].proc.wait, 15) == 0
            offset = await publish(nc, settings, "public:drain", {"after": "drain"})
            got = await asyncio.wait_for(sub.queue.get(), 15)
            assert (got.offset, client.url) == (offset, hubs[0].ws)
        finally:
            await client.close()

    async def test_a_change_made_through_one_hub_reaches_a_client_of_the_other(
        self, hubs: list[HubProcess], settings: Settings, db: Any
    ) -> None:
        """Scale-out: B's RPC goes in at hub 2; A, on hub 1, gets the event."""
        from tests.support.accounts import mailed_token, make_user

        tokens = TestTokens(settings)
        ann = await make_user(db, "ann-scale@example.com")
        bob = await make_user(db, "bob-scale@example.com")
        a = HubbubClient(hubs[0].ws, tokens.issue(ann))
        b = HubbubClient(hubs[1].ws, tokens.issue(bob))
        try:
            await a.connect()
            await b.connect()
            ws = (await a.rpc("workspaces.create", {"name": "Two hubs"}))["id"]
            await a.rpc(
                "members.add",
                {"workspace_id": ws, "email": "bob-scale@example.com", "role": "member"},
            )
            token = await mailed_token(db, "bob-scale@example.com", "/invitations")
            await b.rpc("invitations.accept", {"token": token})  # B joins by accepting
            sub = await a.subscribe(f"workspace:{ws}")
            made = await b.rpc(
                "resources.create", {"workspace_id": ws, "kind": "task", "title": "via hub 2"}
            )
            while True:
                event = (await asyncio.wait_for(sub.queue.get(), 10)).data
                if event["type"] == "resource.created":
                    break
            assert (event["data"]["id"], event["actor"]) == (made["id"], bob)
        finally:
            await a.close()
            await b.close()
