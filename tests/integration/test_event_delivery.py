"""A worker killed right after a commit: its events still reach the stream, once."""

from __future__ import annotations

import signal

import pytest
from nats.aio.client import Client as NATS
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.outbox import OutboxEvent
from hubbub.bus import Bus
from hubbub.config import Settings
from hubbub.contracts.api import resources as resources_api
from hubbub.contracts.api import workspaces as workspaces_api
from hubbub.contracts.envelope import Caller, CallerKind
from tests.integration.test_resources import eventually, workspace_events
from tests.support import ops
from tests.support.accounts import make_user
from tests.support.processes import start_test_worker, wait_exit, wait_until_serving
from workers.app import worker_running

pytestmark = pytest.mark.slow


class TestWorkerKilledAfterCommit:
    async def test_the_next_relay_publishes_the_event_once(
        self,
        settings: Settings,
        nc: NATS,
        bus: Bus,
        db: async_sessionmaker[AsyncSession],
    ) -> None:
        user_id = await make_user(db, "kill@example.com")
        who = Caller(kind=CallerKind.USER, user_id=user_id, role="member")
        proc = start_test_worker(settings, HUBBUB_TEST_NO_RELAY="1")
        try:
            await wait_until_serving(bus, proc)
            ws = (await bus.request(workspaces_api.create, {"name": "W"}, caller=who)).value
            made = (
                await bus.request(
                    resources_api.create,
                    {"workspace_id": str(ws.id), "kind": "task", "title": "survives"},
                    caller=who,
                )
            ).value
            proc.send_signal(signal.SIGKILL)  # committed and answered; never published
            assert await wait_exit(proc, 10) == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
        async with db() as session:
            pending = (
                await session.scalars(
                    select(OutboxEvent.event_type).where(OutboxEvent.published_at.is_(None))
                )
            ).all()
        assert "resource.created" in pending
        assert await workspace_events(nc, settings, str(ws.id)) == []

        async with worker_running(settings, ops.registry_with_tests(), name="after") as running:

            async def published() -> None:
                events = await workspace_events(nc, settings, str(ws.id))
                assert [e["type"] for e in events][-1:] == ["resource.created"]

            await eventually(published)
            # A relay that dies after publishing but before marking re-sends the rows:
            # JetStream keeps one copy of each (the event id is the Nats-Msg-Id).
            async with db() as session:
                rows = (await session.scalars(select(OutboxEvent))).all()
                for row in rows:
                    row.published_at = None
                await session.commit()
            await running.relay.flush()
        events = await workspace_events(nc, settings, str(ws.id))
        created = [e for e in events if e["type"] == "resource.created"]
        assert [e["data"]["id"] for e in created] == [str(made.id)]
        assert len({e["id"] for e in events}) == len(events)
