"""``invitations.preview``: what an invitation link is for, shown before signing in; and
``invitations.mine`` / ``accept_mine`` / ``decline_mine``: the invitations to a confirmed
address, answered by id.

The invitation page names the workspace and who invited before the invitee has an
account. The token is the secret: whoever holds a pending one sees the workspace's
name, the inviter's name, the invited email, the role and the expiry — nothing else —
and every token that is not pending gets the same 404.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.workspaces import invitations as handler
from handlers.workspaces.models import Invitation
from hubbub.config import Rate
from tests.support.accounts import Api, mailed_token, make_user
from tests.support.workspaces import Domain, Person

PREVIEW = "/invitations/preview"


@pytest.fixture
def domain(hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]) -> Domain:
    return Domain(hub_client, db)


async def invited(domain: Domain, who: Person, ws: dict[str, Any]) -> tuple[str, str]:
    """Invite a fresh email into ``ws``: the email and the token mailed to it."""
    email = f"guest-{uuid.uuid4().hex[:6]}@example.com"
    await domain.call(
        "POST", f"/workspaces/{ws['id']}/invitations", who, json={"email": email}, expect=201
    )
    return email, await mailed_token(domain.db, email, "/invitations")


class TestPreview:
    async def test_signed_out_it_names_the_workspace_the_inviter_the_email_and_the_expiry(
        self, domain: Domain
    ) -> None:
        ann = await domain.person("ann")  # display name "Ann"
        ws = await domain.workspace(ann, "Launch plan")
        email, token = await invited(domain, ann, ws)
        before = datetime.now(UTC)
        body = await domain.call("POST", PREVIEW, None, json={"token": token}, expect=200)
        assert sorted(body) == ["email", "expires_at", "invited_by_name", "role", "workspace_name"]
        assert (body["workspace_name"], body["invited_by_name"], body["email"], body["role"]) == (
            "Launch plan",
            "Ann",
            email,
            "member",
        )
        expires = datetime.fromisoformat(body["expires_at"])
        assert before + timedelta(days=1) < expires <= before + timedelta(days=31)

    async def test_a_signed_in_stranger_sees_the_same_and_nothing_changes(
        self, domain: Domain
    ) -> None:
        """A preview answers nothing: the invitee may still accept afterwards."""
        ann, bob = await domain.person("ann"), await domain.person("bob")
        ws = await domain.workspace(ann, "Ops")
        email, token = await invited(domain, ann, ws)
        for who in (bob, None, bob):
            body = await domain.call("POST", PREVIEW, who, json={"token": token}, expect=200)
            assert body["workspace_name"] == "Ops"
        await make_user(domain.db, email)
        guest = (await Api(domain.client).login(email))["access_token"]
        accepted = await domain.call(
            "POST",
            "/invitations/accept",
            None,
            json={"token": token},
            headers={"Authorization": f"Bearer {guest}"},
            expect=200,
        )
        assert accepted == {"workspace_id": ws["id"], "role": "member"}

    async def test_unknown_answered_replaced_revoked_and_expired_tokens_get_one_neutral_404(
        self, domain: Domain
    ) -> None:
        ann = await domain.person("ann")
        ws = await domain.workspace(ann)
        bodies: dict[str, Any] = {}

        bodies["unknown"] = await domain.call(
            "POST", PREVIEW, None, json={"token": "x" * 43}, expect=404
        )

        email, used = await invited(domain, ann, ws)
        await make_user(domain.db, email)
        guest = (await Api(domain.client).login(email))["access_token"]
        await domain.call(
            "POST",
            "/invitations/decline",
            None,
            json={"token": used},
            headers={"Authorization": f"Bearer {guest}"},
            expect=204,
        )
        bodies["declined"] = await domain.call(
            "POST", PREVIEW, None, json={"token": used}, expect=404
        )

        email, first = await invited(domain, ann, ws)
        await domain.call(
            "POST", f"/workspaces/{ws['id']}/invitations", ann, json={"email": email}, expect=201
        )
        bodies["replaced"] = await domain.call(
            "POST", PREVIEW, None, json={"token": first}, expect=404
        )

        _, revoked = await invited(domain, ann, ws)
        page = await domain.call("GET", f"/workspaces/{ws['id']}/invitations", ann, expect=200)
        for item in page["items"]:
            await domain.call(
                "DELETE", f"/workspaces/{ws['id']}/invitations/{item['id']}", ann, expect=204
            )
        bodies["revoked"] = await domain.call(
            "POST", PREVIEW, None, json={"token": revoked}, expect=404
        )

        _, expired = await invited(domain, ann, ws)
        async with domain.db() as session, session.begin():
            await session.execute(
                update(Invitation)
                .where(Invitation.token_hash == handler.digest(expired))
                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        bodies["expired"] = await domain.call(
            "POST", PREVIEW, None, json={"token": expired}, expect=404
        )

        neutral = {(b["code"], b["detail"]) for b in bodies.values()}
        assert neutral == {("not_found", handler.NOT_VALID)}, bodies
        assert all(
            "details" not in b or set(b["details"]) <= {"request_id"} for b in bodies.values()
        )

    async def test_a_malformed_token_is_a_validation_error_and_a_get_is_no_route(
        self, domain: Domain
    ) -> None:
        await domain.call("POST", PREVIEW, None, json={"token": "short"}, expect=422)
        await domain.call("POST", PREVIEW, None, json={}, expect=422)
        await domain.call("GET", PREVIEW, None, params={"token": "x" * 43}, expect=405)

    async def test_previews_are_limited_per_ip_address(
        self, domain: Domain, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(handler, "PREVIEW_RATE", Rate(3, 3600))
        ann = await domain.person("ann")
        ws = await domain.workspace(ann)
        _, token = await invited(domain, ann, ws)
        await domain.call("POST", PREVIEW, None, json={"token": token}, expect=200)
        for _ in range(2):  # bad tokens count too: guessing costs the same
            await domain.call("POST", PREVIEW, None, json={"token": "y" * 43}, expect=404)
        response = await domain.call("POST", PREVIEW, None, json={"token": token})
        body = await response.json()
        assert (response.status, body["code"]) == (429, "rate_limited")
        assert int(response.headers["Retry-After"]) > 0


class TestMine:
    """``GET /invitations/mine``: a confirmed address sees the invitations to it and
    answers them by id — the verification link may open in another tab than the
    invitation's, and the workspaces page still knows."""

    async def _guest(self, domain: Domain, *, verified: bool = True) -> tuple[str, dict[str, str]]:
        email = f"guest-{uuid.uuid4().hex[:6]}@example.com"
        await make_user(domain.db, email, verified=verified)
        token = (await Api(domain.client).login(email))["access_token"]
        return email, {"Authorization": f"Bearer {token}"}

    async def test_lists_pending_invitations_to_my_email_and_accepts_one_by_id(
        self, domain: Domain
    ) -> None:
        ann = await domain.person("ann")
        email, headers = await self._guest(domain)
        first = await domain.workspace(ann, "First")
        second = await domain.workspace(ann, "Second")
        for ws, role in ((first, "member"), (second, "viewer")):
            await domain.call(
                "POST",
                f"/workspaces/{ws['id']}/invitations",
                ann,
                json={"email": email, "role": role},
                expect=201,
            )
        mine = await domain.call("GET", "/invitations/mine", None, headers=headers, expect=200)
        assert [(i["workspace_name"], i["invited_by_name"], i["role"]) for i in mine["items"]] == [
            ("Second", "Ann", "viewer"),
            ("First", "Ann", "member"),
        ]
        assert sorted(mine["items"][0]) == [
            "expires_at",
            "id",
            "invited_by_name",
            "role",
            "workspace_id",
            "workspace_name",
        ]
        first_id = mine["items"][1]["id"]
        accepted = await domain.call(
            "POST", f"/invitations/mine/{first_id}/accept", None, headers=headers, expect=200
        )
        assert accepted == {"workspace_id": first["id"], "role": "member"}
        await domain.call("GET", f"/workspaces/{first['id']}", None, headers=headers, expect=200)
        # Answered: gone from the list, and neither its id nor its token works again.
        mine = await domain.call("GET", "/invitations/mine", None, headers=headers, expect=200)
        assert [i["workspace_name"] for i in mine["items"]] == ["Second"]
        await domain.call(
            "POST", f"/invitations/mine/{first_id}/accept", None, headers=headers, expect=404
        )
        token = await mailed_token(domain.db, email, "/invitations")  # the newest: Second's
        await domain.call(
            "POST",
            f"/invitations/mine/{mine['items'][0]['id']}/decline",
            None,
            headers=headers,
            expect=204,
        )
        await domain.call("POST", PREVIEW, None, json={"token": token}, expect=404)
        mine = await domain.call("GET", "/invitations/mine", None, headers=headers, expect=200)
        assert mine["items"] == []

    async def test_the_list_is_the_newest_invitations_up_to_its_cap_with_no_cursor(
        self, domain: Domain, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """One page, ``{items}``: past the cap (100), the oldest are not listed, and there
        is no ``next_cursor`` to page on with."""
        monkeypatch.setattr(handler, "MINE_LIMIT", 2)
        ann = await domain.person("ann")
        email, headers = await self._guest(domain)
        for name in ("Oldest", "Older", "Newest"):
            ws = await domain.workspace(ann, name)
            await domain.call(
                "POST",
                f"/workspaces/{ws['id']}/invitations",
                ann,
                json={"email": email},
                expect=201,
            )

        mine = await domain.call("GET", "/invitations/mine", None, headers=headers, expect=200)

        assert list(mine) == ["items"]
        assert [i["workspace_name"] for i in mine["items"]] == ["Newest", "Older"]

    async def test_an_unconfirmed_address_sees_none_and_answers_none(self, domain: Domain) -> None:
        """Whoever registered an address first must not learn who invites its owner."""
        ann = await domain.person("ann")
        email, headers = await self._guest(domain, verified=False)
        ws = await domain.workspace(ann, "Payroll")
        invitation = await domain.call(
            "POST", f"/workspaces/{ws['id']}/invitations", ann, json={"email": email}, expect=201
        )
        listed = await domain.call("GET", "/invitations/mine", None, headers=headers, expect=403)
        assert listed["details"]["reason"] == "email_unverified"
        assert "Payroll" not in str(listed)
        for answer in ("accept", "decline"):
            refused = await domain.call(
                "POST",
                f"/invitations/mine/{invitation['id']}/{answer}",
                None,
                headers=headers,
                expect=403,
            )
            assert refused["details"]["reason"] == "email_unverified"

    async def test_someone_elses_invitation_id_is_not_found(self, domain: Domain) -> None:
        """Members see invitation ids; knowing one answers nothing for another account."""
        ann, bob = await domain.person("ann"), await domain.person("bob")
        ws = await domain.workspace(ann)
        email, headers = await self._guest(domain)
        invitation = await domain.call(
            "POST", f"/workspaces/{ws['id']}/invitations", ann, json={"email": email}, expect=201
        )
        for answer in ("accept", "decline"):
            await domain.call(
                "POST", f"/invitations/mine/{invitation['id']}/{answer}", bob, expect=404
            )
        await domain.call(
            "POST", f"/invitations/mine/{uuid.uuid4()}/accept", None, headers=headers, expect=404
        )
        mine = await domain.call("GET", "/invitations/mine", None, headers=headers, expect=200)
        assert [i["id"] for i in mine["items"]] == [invitation["id"]]
