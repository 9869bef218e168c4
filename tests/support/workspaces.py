"""Helpers for workspace-domain tests: signed-in users, and a small REST client that
creates workspaces, members and resources through the real API."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.accounts import Api, bearer, mailed_token, make_user


@dataclass(frozen=True)
class Person:
    id: str
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)


@dataclass
class Domain:
    """The domain API through a hub test client, as a few people."""

    client: TestClient[Any, Any]
    db: async_sessionmaker[AsyncSession]
    people: dict[str, Person] = field(default_factory=dict)

    async def person(self, name: str) -> Person:
        """A signed-in user called ``name`` (made once per test)."""
        if name not in self.people:
            email = f"{name}-{uuid.uuid4().hex[:6]}@example.com"
            user_id = await make_user(self.db, email, display_name=name.title())
            tokens = await Api(self.client).login(email)
            self.people[name] = Person(user_id, email, tokens["access_token"])
        return self.people[name]

    async def call(
        self,
        method: str,
        path: str,
        who: Person | None,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
        expect: int | None = None,
    ) -> Any:
        """The response; with ``expect``, assert its status and return its JSON (or None)."""
        all_headers = {**(who.headers if who else {}), **(headers or {})}
        response = await self.client.request(
            method, "/api/v1" + path, json=json, headers=all_headers, params=params
        )
        if expect is None:
            return response
        text = await response.text()
        assert response.status == expect, f"{method} {path}: {response.status} {text}"
        return await response.json() if text else None

    async def workspace(self, owner: Person, name: str = "Team") -> dict[str, Any]:
        body: dict[str, Any] = await self.call(
            "POST", "/workspaces", owner, json={"name": name}, expect=201
        )
        return body

    async def add(self, workspace_id: str, by: Person, who: Person, role: str) -> dict[str, Any]:
        """``by`` invites ``who`` (``members.add``) and ``who`` accepts with the mailed
        token; returns the invitation."""
        body: dict[str, Any] = await self.call(
            "POST",
            f"/workspaces/{workspace_id}/members",
            by,
            json={"email": who.email, "role": role},
            expect=202,
        )
        assert body["status"] == "invited"
        await self.accept(who)
        return body

    async def accept(self, who: Person) -> dict[str, Any]:
        """``who`` accepts the newest invitation mailed to them."""
        token = await mailed_token(self.db, who.email, "/invitations")
        accepted: dict[str, Any] = await self.call(
            "POST", "/invitations/accept", who, json={"token": token}, expect=200
        )
        return accepted

    async def resource(self, workspace_id: str, by: Person, **fields: Any) -> dict[str, Any]:
        body: dict[str, Any] = await self.call(
            "POST",
            f"/workspaces/{workspace_id}/resources",
            by,
            json={"kind": "task", "title": "A task", **fields},
            expect=201,
        )
        return body

    async def team(self) -> tuple[dict[str, Any], dict[str, Person]]:
        """A workspace with an owner, an admin, a member, a viewer and an outsider."""
        people = {n: await self.person(n) for n in ("owner", "admin", "member", "viewer", "out")}
        ws = await self.workspace(people["owner"])
        for role in ("admin", "member", "viewer"):
            await self.add(ws["id"], people["owner"], people[role], role)
        return ws, people
