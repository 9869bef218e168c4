"""Every domain event a handler emits is a catalog type, on a channel kind the catalog
names, with a ``data`` its model accepts — checked on the outbox rows of one flow
through the REST API that makes every catalog type happen."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.outbox import OutboxEvent
from hubbub.contracts.api.users import Role
from hubbub.contracts.channels import Channel
from hubbub.contracts.event_types import EVENT_TYPES
from hubbub.contracts.events import Event
from tests.support.accounts import Api, mailed_token, make_user
from tests.support.workspaces import Domain, Person


@pytest.fixture
def domain(hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]) -> Domain:
    return Domain(hub_client, db)


async def admin(domain: Domain) -> Person:
    email = f"root-{uuid.uuid4().hex[:6]}@example.com"
    user_id = await make_user(domain.db, email, role=Role.ADMIN)
    tokens = await Api(domain.client).login(email)
    return Person(user_id, email, tokens["access_token"])


async def every_kind_of_change(domain: Domain) -> None:
    """One of each change a client can make that emits an event."""
    ann, bob, cy, dan = [await domain.person(n) for n in ("ann", "bob", "cy", "dan")]
    ws = await domain.workspace(ann)
    base = f"/workspaces/{ws['id']}"
    await domain.call("PATCH", base, ann, json={"name": "Renamed"}, expect=200)
    await domain.add(ws["id"], ann, bob, "member")  # invitation.created, member.added
    await domain.call("PATCH", f"{base}/members/{bob.id}", ann, json={"role": "admin"}, expect=200)
    await domain.call("DELETE", f"{base}/members/{bob.id}", ann, expect=204)
    await domain.call("POST", f"{base}/invitations", ann, json={"email": cy.email}, expect=201)
    token = await mailed_token(domain.db, cy.email, "/invitations")
    await domain.call("POST", "/invitations/decline", cy, json={"token": token}, expect=204)
    invited = await domain.call(
        "POST", f"{base}/invitations", ann, json={"email": dan.email}, expect=201
    )
    await domain.call("DELETE", f"{base}/invitations/{invited['id']}", ann, expect=204)
    resource = await domain.resource(ws["id"], ann)
    path = f"{base}/resources/{resource['id']}"
    await domain.call("PATCH", path, ann, json={"title": "Renamed"}, expect=200)
    await domain.call("DELETE", path, ann, expect=204)
    await domain.call("POST", f"{path}/restore", ann, expect=200)
    await domain.call("DELETE", path, ann, params={"hard": "true"}, expect=204)
    await domain.call("PATCH", "/users/me", ann, json={"display_name": "Ann B."}, expect=200)
    root = await admin(domain)
    await domain.call("PATCH", f"/users/{cy.id}", root, json={"role": "admin"}, expect=200)
    await domain.call("DELETE", base, ann, expect=204)


async def test_every_emitted_event_is_a_catalog_type_whose_model_accepts_its_data(
    domain: Domain, db: async_sessionmaker[AsyncSession]
) -> None:
    await every_kind_of_change(domain)
    async with db() as session:
        rows = (await session.scalars(select(OutboxEvent).order_by(OutboxEvent.id))).all()
    seen: set[str] = set()
    for row in rows:
        assert row.event_type in EVENT_TYPES, f"{row.event_type} is not in the catalog"
        kind = EVENT_TYPES[row.event_type]
        event = Event.model_validate(row.payload)
        assert (event.type, event.channel) == (row.event_type, row.channel)
        assert Channel.parse(row.channel).kind in kind.channels, (kind.name, row.channel)
        kind.data.model_validate(event.data)
        extra = set(event.data) - set(kind.data.model_fields)
        assert not extra, f"{kind.name}: data fields the model does not declare: {extra}"
        seen.add(row.event_type)
    # The flow makes every catalog type happen, so a type no handler emits any more shows.
    assert seen == set(EVENT_TYPES)


async def test_deleting_a_resource_says_whether_for_good(
    domain: Domain, db: async_sessionmaker[AsyncSession]
) -> None:
    ann = await domain.person("ann")
    ws = await domain.workspace(ann)
    resource = await domain.resource(ws["id"], ann)
    path = f"/workspaces/{ws['id']}/resources/{resource['id']}"
    await domain.call("DELETE", path, ann, expect=204)
    await domain.call("DELETE", path, ann, params={"hard": "true"}, expect=204)
    async with db() as session:
        rows = (
            await session.scalars(
                select(OutboxEvent)
                .where(OutboxEvent.event_type == "resource.deleted")
                .order_by(OutboxEvent.id)
            )
        ).all()
    assert [row.payload["data"]["hard"] for row in rows] == [False, True]
