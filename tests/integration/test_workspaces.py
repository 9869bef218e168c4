"""Workspaces, members, invitations and their permissions, through the REST API."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.mail import DevMail
from handlers.workspaces.models import Invitation
from hubbub.bus import Bus
from hubbub.config import Rate, Settings
from hubbub.contracts.api import default_catalog
from hubbub.contracts.api import workspaces as workspaces_api
from hubbub.contracts.envelope import Caller, CallerKind
from hubbub.contracts.errors import Conflict
from tests.support.accounts import Api, mailed_token, make_user
from tests.support.waiting import wait_for
from tests.support.workspaces import Domain, Person


@pytest.fixture
def domain(hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]) -> Domain:
    return Domain(hub_client, db)


async def waiting_on_a_lock(db: async_sessionmaker[AsyncSession]) -> bool:
    """Whether a statement on the workspaces table waits for a lock (a request blocked by
    the test's own transaction)."""
    async with db() as session:
        found = await session.execute(
            text(
                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND query LIKE '%FROM workspaces%'"
            )
        )
        return found.first() is not None


def caller(person: Person) -> Caller:
    return Caller(kind=CallerKind.USER, user_id=person.id, role="member")


class TestWorkspaces:
    async def test_the_creator_is_the_owner_and_sees_it_in_their_list(self, domain: Domain) -> None:
        ann = await domain.person("ann")
        ws = await domain.workspace(ann, "  Design  ")
        page = await domain.call("GET", "/workspaces", ann, expect=200)
        assert (ws["name"], ws["role"], ws["version"]) == ("Design", "owner", 1)
        assert [w["id"] for w in page["items"]] == [ws["id"]]

    async def test_the_list_pages_with_a_cursor_newest_first(self, domain: Domain) -> None:
        ann = await domain.person("ann")
        made = [(await domain.workspace(ann, f"w{i}"))["id"] for i in range(5)]
        seen: list[str] = []
        cursor = None
        while True:
            params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
            page = await domain.call("GET", "/workspaces", ann, params=params, expect=200)
            seen += [w["id"] for w in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == made[::-1]

    async def test_rename_with_if_match_raises_the_version_and_the_etag(
        self, domain: Domain
    ) -> None:
        ann = await domain.person("ann")
        ws = await domain.workspace(ann)
        response = await domain.call(
            "PATCH", f"/workspaces/{ws['id']}", ann, json={"name": "B"}, headers={"If-Match": '"1"'}
        )
        assert (response.status, response.headers["ETag"]) == (200, '"2-owner"')
        assert (await response.json())["name"] == "B"

    async def test_a_members_new_role_is_a_new_etag(self, domain: Domain) -> None:
        """The workspace as a member sees it carries their role, which changes without
        the workspace's version: a tag held from before is not current."""
        owner, bob = await domain.person("owner"), await domain.person("bob")
        ws = await domain.workspace(owner)
        await domain.add(ws["id"], owner, bob, "viewer")
        path = f"/workspaces/{ws['id']}"
        before = await domain.call("GET", path, bob)
        held = before.headers["ETag"]
        await domain.call(
            "PATCH", f"{path}/members/{bob.id}", owner, json={"role": "admin"}, expect=200
        )
        again = await domain.call("GET", path, bob, headers={"If-None-Match": held})
        assert again.status == 200
        assert (await again.json())["role"] == "admin"
        assert again.headers["ETag"] != held
        current = await domain.call(
            "GET", path, bob, headers={"If-None-Match": again.headers["ETag"]}
        )
        assert current.status == 304

    async def test_the_etag_it_issued_and_the_bare_version_both_serve_as_if_match(
        self, domain: Domain
    ) -> None:
        ann = await domain.person("ann")
        ws = await domain.workspace(ann)
        path = f"/workspaces/{ws['id']}"
        issued = (await domain.call("GET", path, ann)).headers["ETag"]
        renamed = await domain.call(
            "PATCH", path, ann, json={"name": "B"}, headers={"If-Match": issued}
        )
        assert renamed.status == 200
        stale = await domain.call(
            "PATCH", path, ann, json={"name": "C"}, headers={"If-Match": issued}, expect=412
        )
        assert stale["details"]["current_version"] == 2
        await domain.call("DELETE", path, ann, headers={"If-Match": '"2"'}, expect=204)

    async def test_a_stale_if_match_is_412_over_rest(self, domain: Domain) -> None:
        ann = await domain.person("ann")
        ws = await domain.workspace(ann)
        body = await domain.call(
            "PATCH",
            f"/workspaces/{ws['id']}",
            ann,
            json={"name": "B"},
            headers={"If-Match": '"7"'},
            expect=412,
        )
        assert (body["code"], body["details"]["current_version"]) == ("precondition_failed", 1)

    async def test_the_same_stale_version_is_409_over_rpc(self, domain: Domain, bus: Bus) -> None:
        ann = await domain.person("ann")
        ws = await domain.workspace(ann)
        with pytest.raises(Conflict) as caught:
            await bus.request(
                workspaces_api.update,
                {"workspace_id": ws["id"], "name": "B", "expected_version": 7},
                caller=caller(ann),
            )
        assert caught.value.details["reason"] == "stale_version"

    async def test_the_expected_version_is_not_taken_from_a_rest_body(self, domain: Domain) -> None:
        ann = await domain.person("ann")
        ws = await domain.workspace(ann)
        body = await domain.call(
            "PATCH",
            f"/workspaces/{ws['id']}",
            ann,
            json={"name": "B", "expected_version": 1},
            expect=422,
        )
        assert body["details"]["errors"][0]["loc"] == ["expected_version"]

    async def test_an_empty_patch_or_a_null_name_is_refused(self, domain: Domain) -> None:
        ann = await domain.person("ann")
        ws = await domain.workspace(ann)
        await domain.call("PATCH", f"/workspaces/{ws['id']}", ann, json={}, expect=422)
        await domain.call("PATCH", f"/workspaces/{ws['id']}", ann, json={"name": None}, expect=422)

    @pytest.mark.parametrize(
        ("method", "body", "expect_before"),
        [("PATCH", {"name": "Mine"}, 200), ("DELETE", None, 204)],
    )
    async def test_an_owner_demoted_meanwhile_may_not_rename_or_delete_it(
        self,
        domain: Domain,
        db: async_sessionmaker[AsyncSession],
        method: str,
        body: dict[str, str] | None,
        expect_before: int,
    ) -> None:
        """The role is checked under the workspace lock: a call that comes in while a
        demotion holds the lock is judged by the role the demotion leaves."""
        ws, people = await domain.team()
        await domain.call(
            "PATCH",
            f"/workspaces/{ws['id']}/members/{people['admin'].id}",
            people["owner"],
            json={"role": "owner"},
            expect=200,
        )
        async with db() as demoting:
            await demoting.execute(
                text("SELECT 1 FROM workspaces WHERE id = :id FOR NO KEY UPDATE"),
                {"id": ws["id"]},
            )
            await demoting.execute(
                text(
                    "UPDATE workspace_members SET role = 'admin'"
                    " WHERE workspace_id = :ws AND user_id = :user"
                ),
                {"ws": ws["id"], "user": people["admin"].id},
            )
            calling = asyncio.create_task(
                domain.call(method, f"/workspaces/{ws['id']}", people["admin"], json=body)
            )
            await wait_for(lambda: waiting_on_a_lock(db), what="the call waiting for the workspace")
            await demoting.commit()
        response = await calling
        assert response.status == 403, await response.text()
        await domain.call(
            method, f"/workspaces/{ws['id']}", people["owner"], json=body, expect=expect_before
        )

    async def test_deleting_removes_it_for_every_member(self, domain: Domain) -> None:
        ws, people = await domain.team()
        await domain.call("DELETE", f"/workspaces/{ws['id']}", people["owner"], expect=204)
        await domain.call("GET", f"/workspaces/{ws['id']}", people["member"], expect=404)


def _route_table(ws: str, resource: str, user: str) -> dict[str, tuple[str, str, Any]]:
    """Every operation under /workspaces/{workspace_id}: method, path, a valid body."""
    base = f"/workspaces/{ws}"
    return {
        "workspaces.get": ("GET", base, None),
        "workspaces.update": ("PATCH", base, {"name": "x"}),
        "workspaces.delete": ("DELETE", base, None),
        "members.list": ("GET", f"{base}/members", None),
        "members.add": ("POST", f"{base}/members", {"email": "new@example.com"}),
        "members.update": ("PATCH", f"{base}/members/{user}", {"role": "member"}),
        "members.remove": ("DELETE", f"{base}/members/{user}", None),
        "members.leave": ("POST", f"{base}/leave", None),
        "invitations.create": ("POST", f"{base}/invitations", {"email": "new@example.com"}),
        "invitations.list": ("GET", f"{base}/invitations", None),
        "invitations.revoke": ("DELETE", f"{base}/invitations/{uuid.uuid4()}", None),
        "resources.list": ("GET", f"{base}/resources", None),
        "resources.create": ("POST", f"{base}/resources", {"kind": "task", "title": "t"}),
        "resources.get": ("GET", f"{base}/resources/{resource}", None),
        "resources.update": ("PATCH", f"{base}/resources/{resource}", {"title": "u"}),
        "resources.delete": ("DELETE", f"{base}/resources/{resource}", None),
        "resources.restore": ("POST", f"{base}/resources/{resource}/restore", None),
        "activity.list": ("GET", f"{base}/activity", None),
    }


class TestQuota:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"max_workspaces_per_user": 2})

    async def test_an_account_owns_at_most_the_configured_number_of_workspaces(
        self, domain: Domain
    ) -> None:
        """Past the cap, create is 403 with reason quota; another account is unaffected."""
        ann, bob = await domain.person("ann"), await domain.person("bob")
        await domain.workspace(ann, "one")
        await domain.workspace(ann, "two")
        refused = await domain.call("POST", "/workspaces", ann, json={"name": "three"}, expect=403)
        assert (refused["code"], refused["details"]) == (
            "forbidden",
            {"reason": "quota", "limit": 2},
        )
        await domain.workspace(bob, "his")

    async def test_the_quota_counts_every_way_of_becoming_an_owner(self, domain: Domain) -> None:
        """Accepting an owner invitation or being made an owner past the cap is 403 with
        reason quota too; joining in another role is not owning."""
        ann, bob = await domain.person("ann"), await domain.person("bob")
        await domain.workspace(ann, "one")
        await domain.workspace(ann, "two")
        ws = await domain.workspace(bob, "his")
        await domain.call(
            "POST",
            f"/workspaces/{ws['id']}/members",
            bob,
            json={"email": ann.email, "role": "owner"},
            expect=202,
        )
        token = await mailed_token(domain.db, ann.email, "/invitations")
        refused = await domain.call(
            "POST", "/invitations/accept", ann, json={"token": token}, expect=403
        )
        assert refused["details"] == {"reason": "quota", "limit": 2}
        await domain.add(ws["id"], bob, ann, "admin")
        refused = await domain.call(
            "PATCH",
            f"/workspaces/{ws['id']}/members/{ann.id}",
            bob,
            json={"role": "owner"},
            expect=403,
        )
        assert refused["details"] == {"reason": "quota", "limit": 2}
        members = await domain.call("GET", f"/workspaces/{ws['id']}/members", bob, expect=200)
        assert {m["user_id"]: m["role"] for m in members["items"]}[ann.id] == "admin"


class TestMemberCap:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"max_members_per_workspace": 3})

    async def test_members_and_pending_invitations_count_toward_the_cap(
        self, domain: Domain
    ) -> None:
        """The owner and two invitations fill a workspace of 3: a third invitation is 403
        reason quota (by either route, and nothing is mailed);
        re-inviting a pending email replaces it and still fits; accepting needs no room
        of its own; a revoked invitation frees its place."""
        ann, bob = await domain.person("ann"), await domain.person("bob")
        ws = await domain.workspace(ann)
        invitations = f"/workspaces/{ws['id']}/invitations"
        await domain.add(ws["id"], ann, bob, "member")  # a member: 2 of 3
        first = await domain.call(
            "POST", invitations, ann, json={"email": "c@example.com"}, expect=201
        )  # pending: 3 of 3
        for path in (invitations, f"/workspaces/{ws['id']}/members"):
            refused = await domain.call(
                "POST", path, ann, json={"email": "d@example.com"}, expect=403
            )
            assert (refused["code"], refused["details"]) == (
                "forbidden",
                {"reason": "quota", "limit": 3},
            )
        async with domain.db() as session:
            mailed = await session.scalar(
                select(func.count()).select_from(DevMail).where(DevMail.to_addr == "d@example.com")
            )
        assert mailed == 0
        again = await domain.call(
            "POST", invitations, ann, json={"email": "c@example.com", "role": "viewer"}, expect=201
        )
        await domain.call("DELETE", f"{invitations}/{again['id']}", ann, expect=204)
        await domain.call("POST", invitations, ann, json={"email": "d@example.com"}, expect=201)
        assert first["id"] != again["id"]

    async def test_another_workspace_is_not_counted(self, domain: Domain) -> None:
        ann = await domain.person("ann")
        full = await domain.workspace(ann, "full")
        for email in ("a@example.com", "b@example.com"):
            await domain.call(
                "POST",
                f"/workspaces/{full['id']}/invitations",
                ann,
                json={"email": email},
                expect=201,
            )
        await domain.call(
            "POST",
            f"/workspaces/{full['id']}/invitations",
            ann,
            json={"email": "c@example.com"},
            expect=403,
        )
        other = await domain.workspace(ann, "other")
        await domain.call(
            "POST",
            f"/workspaces/{other['id']}/invitations",
            ann,
            json={"email": "a@example.com"},
            expect=201,
        )


class TestPermissions:
    def test_the_route_table_covers_every_workspace_operation(self) -> None:
        scoped = {
            op.name
            for op in default_catalog()
            if op.http is not None and "{workspace_id}" in op.http.path
        }
        assert scoped == set(_route_table("w", "r", "u"))

    async def test_a_non_member_gets_404_for_every_workspace_route(self, domain: Domain) -> None:
        ws, people = await domain.team()
        res = await domain.resource(ws["id"], people["member"])
        table = _route_table(ws["id"], res["id"], people["member"].id)
        statuses = {}
        for name, (method, path, body) in table.items():
            response = await domain.call(method, path, people["out"], json=body)
            statuses[name] = response.status
        assert statuses == dict.fromkeys(table, 404)

    async def test_a_viewer_gets_403_for_every_write(self, domain: Domain) -> None:
        ws, people = await domain.team()
        res = await domain.resource(ws["id"], people["member"])
        table = _route_table(ws["id"], res["id"], people["member"].id)
        writes = {
            name: route
            for name, route in table.items()
            if default_catalog()[name].mutating and name != "members.leave"
        }
        statuses = {}
        for name, (method, path, body) in writes.items():
            response = await domain.call(method, path, people["viewer"], json=body)
            statuses[name] = response.status
        assert statuses == dict.fromkeys(writes, 403)

    async def test_a_viewer_reads_everything(self, domain: Domain) -> None:
        ws, people = await domain.team()
        res = await domain.resource(ws["id"], people["member"])
        table = _route_table(ws["id"], res["id"], people["member"].id)
        for method, path, _ in table.values():
            if method == "GET":
                await domain.call(method, path, people["viewer"], expect=200)

    async def test_members_write_resources_but_do_not_manage_members(self, domain: Domain) -> None:
        ws, people = await domain.team()
        await domain.resource(ws["id"], people["member"])
        await domain.call(
            "POST",
            f"/workspaces/{ws['id']}/members",
            people["member"],
            json={"email": "x@example.com"},
            expect=403,
        )

    async def test_only_admins_delete_resources_for_good(self, domain: Domain) -> None:
        ws, people = await domain.team()
        res = await domain.resource(ws["id"], people["member"])
        path = f"/workspaces/{ws['id']}/resources/{res['id']}"
        await domain.call("DELETE", path, people["member"], params={"hard": "true"}, expect=403)
        await domain.call("DELETE", path, people["admin"], params={"hard": "true"}, expect=204)
        await domain.call(
            "GET", path, people["admin"], params={"include_deleted": "true"}, expect=404
        )


class TestMembers:
    async def test_the_member_list_shows_a_name_changed_since_it_was_read(
        self, domain: Domain
    ) -> None:
        """The list's first page is cached for the workspace; a member's new display name
        empties that cache like any change in the workspace."""
        ws, people = await domain.team()
        path = f"/workspaces/{ws['id']}/members"
        await domain.call("GET", path, people["owner"], expect=200)  # now cached
        await domain.call(
            "PATCH", "/users/me", people["viewer"], json={"display_name": "Vera"}, expect=200
        )
        page = await domain.call("GET", path, people["owner"], expect=200)
        names = {m["user_id"]: m["display_name"] for m in page["items"]}
        assert names[people["viewer"].id] == "Vera"

    async def test_adding_an_existing_account_invites_it_and_it_joins_only_by_accepting(
        self, domain: Domain
    ) -> None:
        """Consent: members.add never makes anyone a member at once."""
        ann, bob = await domain.person("ann"), await domain.person("bob")
        ws = await domain.workspace(ann)
        base = f"/workspaces/{ws['id']}"
        invited = await domain.call(
            "POST", f"{base}/members", ann, json={"email": bob.email, "role": "viewer"}, expect=202
        )
        assert (invited["status"], invited["invitation"]["email"]) == ("invited", bob.email)
        assert "member" not in invited
        await domain.call("GET", base, bob, expect=404)  # not a member yet
        page = await domain.call("GET", f"{base}/members", ann, expect=200)
        assert [m["email"] for m in page["items"]] == [ann.email]

        assert await domain.accept(bob) == {"workspace_id": ws["id"], "role": "viewer"}
        page = await domain.call("GET", f"{base}/members", bob, expect=200)
        assert sorted(m["role"] for m in page["items"]) == ["owner", "viewer"]

    async def test_the_answer_is_the_same_whether_or_not_the_email_has_an_account(
        self, domain: Domain
    ) -> None:
        """No enumeration: the same status and the same keys, only the email differs."""
        ann, bob = await domain.person("ann"), await domain.person("bob")
        ws = await domain.workspace(ann)
        answers = [
            await domain.call(
                "POST",
                f"/workspaces/{ws['id']}/members",
                ann,
                json={"email": email, "role": "member"},
                expect=202,
            )
            for email in (bob.email, f"nobody-{uuid.uuid4().hex[:6]}@example.com")
        ]

        def shape(body: dict[str, Any]) -> Any:
            return body["status"], sorted(body), sorted(body["invitation"])

        assert (
            shape(answers[0])
            == shape(answers[1])
            == (
                "invited",
                ["invitation", "status"],
                sorted(answers[0]["invitation"]),
            )
        )

    async def test_adding_a_member_again_is_a_conflict(self, domain: Domain) -> None:
        ann, bob = await domain.person("ann"), await domain.person("bob")
        ws = await domain.workspace(ann)
        await domain.add(ws["id"], ann, bob, "member")
        await domain.call(
            "POST",
            f"/workspaces/{ws['id']}/members",
            ann,
            json={"email": bob.email},
            expect=409,
        )

    async def test_the_last_owner_cannot_leave_be_demoted_or_removed(self, domain: Domain) -> None:
        ann = await domain.person("ann")
        ws = await domain.workspace(ann)
        base = f"/workspaces/{ws['id']}"
        await domain.call("POST", f"{base}/leave", ann, expect=409)
        await domain.call(
            "PATCH", f"{base}/members/{ann.id}", ann, json={"role": "admin"}, expect=409
        )
        await domain.call("DELETE", f"{base}/members/{ann.id}", ann, expect=409)

    async def test_with_a_second_owner_the_first_may_leave(self, domain: Domain) -> None:
        ann, bob = await domain.person("ann"), await domain.person("bob")
        ws = await domain.workspace(ann)
        await domain.add(ws["id"], ann, bob, "owner")
        await domain.call("POST", f"/workspaces/{ws['id']}/leave", ann, expect=204)
        await domain.call("GET", f"/workspaces/{ws['id']}", ann, expect=404)

    async def test_admins_cannot_grant_or_touch_the_owner_role(self, domain: Domain) -> None:
        ws, people = await domain.team()
        base = f"/workspaces/{ws['id']}/members"
        admin, owner, member = people["admin"], people["owner"], people["member"]
        await domain.call("PATCH", f"{base}/{member.id}", admin, json={"role": "owner"}, expect=403)
        await domain.call("DELETE", f"{base}/{owner.id}", admin, expect=403)
        await domain.call(
            "PATCH", f"{base}/{member.id}", admin, json={"role": "viewer"}, expect=200
        )

    async def test_a_removed_member_loses_access(self, domain: Domain) -> None:
        ws, people = await domain.team()
        await domain.call(
            "DELETE",
            f"/workspaces/{ws['id']}/members/{people['member'].id}",
            people["admin"],
            expect=204,
        )
        await domain.call("GET", f"/workspaces/{ws['id']}", people["member"], expect=404)


def _token_of(mail: DevMail) -> str:
    found = re.search(r"token=([A-Za-z0-9_-]+)", mail.body)
    assert found is not None
    return found[1]


class TestInvitations:
    async def _mailed_token(self, db: async_sessionmaker[AsyncSession], email: str) -> str:
        async with db() as session:
            mails = (
                await session.scalars(
                    select(DevMail).where(DevMail.to_addr == email).order_by(DevMail.id.desc())
                )
            ).all()
        assert mails, f"no mail to {email}"
        return _token_of(mails[0])

    async def test_adding_an_unknown_email_invites_it_and_the_invitee_accepts(
        self, domain: Domain, db: async_sessionmaker[AsyncSession]
    ) -> None:
        ann = await domain.person("ann")
        ws = await domain.workspace(ann)
        invited = await domain.call(
            "POST",
            f"/workspaces/{ws['id']}/members",
            ann,
            json={"email": "dora@example.com", "role": "member"},
            expect=202,
        )
        assert (invited["status"], invited["invitation"]["email"]) == (
            "invited",
            "dora@example.com",
        )
        token = await self._mailed_token(db, "dora@example.com")
        await make_user(db, "dora@example.com")
        dora = (await Api(domain.client).login("dora@example.com"))["access_token"]
        headers = {"Authorization": f"Bearer {dora}"}
        accepted = await domain.call(
            "POST", "/invitations/accept", None, json={"token": token}, headers=headers, expect=200
        )
        assert accepted == {"workspace_id": ws["id"], "role": "member"}
        await domain.call(
            "POST", "/invitations/accept", None, json={"token": token}, headers=headers, expect=404
        )

    async def test_the_token_travels_in_the_body_never_in_the_url(
        self, domain: Domain, db: async_sessionmaker[AsyncSession]
    ) -> None:
        """URLs end up in access logs; the old path form is no route at all."""
        ann = await domain.person("ann")
        ws = await domain.workspace(ann)
        await domain.call(
            "POST",
            f"/workspaces/{ws['id']}/invitations",
            ann,
            json={"email": "hal@example.com"},
            expect=201,
        )
        token = await self._mailed_token(db, "hal@example.com")
        await make_user(db, "hal@example.com")
        hal = (await Api(domain.client).login("hal@example.com"))["access_token"]
        headers = {"Authorization": f"Bearer {hal}"}
        await domain.call("POST", f"/invitations/{token}/accept", None, headers=headers, expect=404)
        await domain.call(
            "POST", "/invitations/accept", None, json={"token": token}, headers=headers, expect=200
        )

    async def test_only_the_invited_email_may_answer(
        self, domain: Domain, db: async_sessionmaker[AsyncSession]
    ) -> None:
        ann, bob = await domain.person("ann"), await domain.person("bob")
        ws = await domain.workspace(ann)
        await domain.call(
            "POST",
            f"/workspaces/{ws['id']}/invitations",
            ann,
            json={"email": "eve@example.com"},
            expect=201,
        )
        token = await self._mailed_token(db, "eve@example.com")
        await domain.call("POST", "/invitations/accept", bob, json={"token": token}, expect=403)
        await domain.call("POST", "/invitations/decline", bob, json={"token": token}, expect=403)

    async def test_a_new_invitation_replaces_the_pending_one(
        self, domain: Domain, db: async_sessionmaker[AsyncSession]
    ) -> None:
        ann = await domain.person("ann")
        ws = await domain.workspace(ann)
        path = f"/workspaces/{ws['id']}/invitations"
        await domain.call("POST", path, ann, json={"email": "fay@example.com"}, expect=201)
        first = await self._mailed_token(db, "fay@example.com")
        await domain.call("POST", path, ann, json={"email": "fay@example.com"}, expect=201)
        second = await self._mailed_token(db, "fay@example.com")
        await make_user(db, "fay@example.com")
        fay = (await Api(domain.client).login("fay@example.com"))["access_token"]
        headers = {"Authorization": f"Bearer {fay}"}
        await domain.call(
            "POST", "/invitations/accept", None, json={"token": first}, headers=headers, expect=404
        )
        await domain.call(
            "POST",
            "/invitations/decline",
            None,
            json={"token": second},
            headers=headers,
            expect=204,
        )

    async def _invite(
        self, domain: Domain, ws: dict[str, Any], by: Person, email: str, **body: Any
    ) -> dict[str, Any]:
        path = f"/workspaces/{ws['id']}/invitations"
        invited: dict[str, Any] = await domain.call(
            "POST", path, by, json={"email": email, **body}, expect=201
        )
        return invited

    async def test_every_member_lists_the_pending_invitations_by_email_a_page_at_a_time(
        self, domain: Domain, db: async_sessionmaker[AsyncSession]
    ) -> None:
        """Only pending, unexpired ones: not replaced, declined, revoked or expired."""
        ws, people = await domain.team()
        admin = people["admin"]
        for email in ("cid@example.com", "ava@example.com", "bo@example.com", "old@example.com"):
            await self._invite(domain, ws, admin, email)
        replaced = await self._invite(domain, ws, admin, "zed@example.com")
        await self._invite(domain, ws, admin, "zed@example.com", role="viewer")
        revoked = await self._invite(domain, ws, admin, "rex@example.com")
        await domain.call(
            "DELETE", f"/workspaces/{ws['id']}/invitations/{revoked['id']}", admin, expect=204
        )
        await self._invite(domain, ws, admin, "dee@example.com")
        await make_user(db, "dee@example.com")
        dee = (await Api(domain.client).login("dee@example.com"))["access_token"]
        token = await self._mailed_token(db, "dee@example.com")
        await domain.call(
            "POST",
            "/invitations/decline",
            None,
            json={"token": token},
            headers={"Authorization": f"Bearer {dee}"},
            expect=204,
        )
        async with db() as session, session.begin():
            await session.execute(
                update(Invitation)
                .where(Invitation.email == "old@example.com")
                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )

        path = f"/workspaces/{ws['id']}/invitations"
        seen: list[dict[str, Any]] = []
        cursor = None
        while True:
            params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
            page = await domain.call("GET", path, people["viewer"], params=params, expect=200)
            seen += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert [(i["email"], i["role"], i["status"]) for i in seen] == [
            ("ava@example.com", "member", "pending"),
            ("bo@example.com", "member", "pending"),
            ("cid@example.com", "member", "pending"),
            ("zed@example.com", "viewer", "pending"),
        ]
        assert replaced["id"] not in {i["id"] for i in seen}
        await domain.call("GET", path, people["out"], expect=404)
        await domain.call("GET", path, people["viewer"], params={"cursor": "0"}, expect=400)

    async def test_a_revoked_invitation_cannot_be_answered_or_revoked_again(
        self, domain: Domain, db: async_sessionmaker[AsyncSession]
    ) -> None:
        ws, people = await domain.team()
        invitation = await self._invite(domain, ws, people["admin"], "gil@example.com")
        token = await self._mailed_token(db, "gil@example.com")
        path = f"/workspaces/{ws['id']}/invitations/{invitation['id']}"
        await domain.call("DELETE", path, people["member"], expect=403)
        await domain.call("DELETE", path, people["admin"], expect=204)
        await domain.call("DELETE", path, people["admin"], expect=404)

        await make_user(db, "gil@example.com")
        gil = (await Api(domain.client).login("gil@example.com"))["access_token"]
        headers = {"Authorization": f"Bearer {gil}"}
        for answer in ("accept", "decline"):
            await domain.call(
                "POST",
                f"/invitations/{answer}",
                None,
                json={"token": token},
                headers=headers,
                expect=404,
            )
        activity = await domain.call(
            "GET", f"/workspaces/{ws['id']}/activity", people["viewer"], expect=200
        )
        assert [(a["action"], a["summary"]) for a in activity["items"][:2]] == [
            ("invitation.revoked", {"email": "gil@example.com"}),
            ("invitation.created", {"email": "gil@example.com", "role": "member"}),
        ]

    async def test_an_answer_locks_the_workspace_before_the_invitation(
        self, domain: Domain, db: async_sessionmaker[AsyncSession]
    ) -> None:
        """The order every invitation change takes its locks in (a revoke, a new
        invitation, a workspace delete): an accept that comes in while a revoke holds the
        workspace waits without holding the invitation, so the revoke goes through and
        the accept finds the invitation revoked — where the other order deadlocked."""
        ws, people = await domain.team()
        invitation = await self._invite(domain, ws, people["admin"], "ida@example.com")
        token = await self._mailed_token(db, "ida@example.com")
        await make_user(db, "ida@example.com")
        ida = (await Api(domain.client).login("ida@example.com"))["access_token"]
        async with db() as revoking:
            await revoking.execute(
                text("SELECT 1 FROM workspaces WHERE id = :id FOR NO KEY UPDATE"),
                {"id": ws["id"]},
            )
            accepting = asyncio.create_task(
                domain.call(
                    "POST",
                    "/invitations/accept",
                    None,
                    json={"token": token},
                    headers={"Authorization": f"Bearer {ida}"},
                )
            )

            await wait_for(
                lambda: waiting_on_a_lock(db), what="the accept waiting for the workspace"
            )
            await revoking.execute(
                text("SELECT 1 FROM workspace_invitations WHERE id = :id FOR UPDATE NOWAIT"),
                {"id": invitation["id"]},
            )
            await revoking.execute(
                text("UPDATE workspace_invitations SET status = 'revoked' WHERE id = :id"),
                {"id": invitation["id"]},
            )
            await revoking.commit()
        response = await accepting
        assert response.status == 404, await response.text()

    async def test_only_owners_revoke_an_invitation_to_the_owner_role(self, domain: Domain) -> None:
        ws, people = await domain.team()
        invitation = await self._invite(
            domain, ws, people["owner"], "own@example.com", role="owner"
        )
        path = f"/workspaces/{ws['id']}/invitations/{invitation['id']}"
        await domain.call("DELETE", path, people["admin"], expect=403)
        await domain.call("DELETE", path, people["owner"], expect=204)

    async def test_only_owners_replace_an_invitation_to_the_owner_role(
        self, domain: Domain
    ) -> None:
        """A new invitation to the same email takes the pending one back: an admin, who
        may not revoke an owner invitation, may not replace it either."""
        ws, people = await domain.team()
        owner_invitation = await self._invite(
            domain, ws, people["owner"], "own@example.com", role="owner"
        )
        for path in ("invitations", "members"):
            await domain.call(
                "POST",
                f"/workspaces/{ws['id']}/{path}",
                people["admin"],
                json={"email": "own@example.com", "role": "viewer"},
                expect=403,
            )
        page = await domain.call(
            "GET", f"/workspaces/{ws['id']}/invitations", people["owner"], expect=200
        )
        assert [i["id"] for i in page["items"]] == [owner_invitation["id"]]
        await self._invite(domain, ws, people["owner"], "own@example.com", role="viewer")

    async def test_an_invitation_is_revoked_only_through_its_own_workspace(
        self, domain: Domain
    ) -> None:
        """An admin of another workspace who knows the id gets 404, and the invitation stays."""
        ws, people = await domain.team()
        invitation = await self._invite(domain, ws, people["admin"], "hal@example.com")
        other = await domain.workspace(people["out"], "Elsewhere")
        await domain.call(
            "DELETE",
            f"/workspaces/{other['id']}/invitations/{invitation['id']}",
            people["out"],
            expect=404,
        )
        page = await domain.call(
            "GET", f"/workspaces/{ws['id']}/invitations", people["member"], expect=200
        )
        assert [i["email"] for i in page["items"]] == ["hal@example.com"]


class TestVerifiedAccountsOnly:
    """Issue 13: someone who registers an address before the admin invites it must not get
    the role the admin chose — answering an invitation needs a verified email."""

    async def test_an_unverified_account_with_the_invited_email_cannot_answer(
        self, domain: Domain, db: async_sessionmaker[AsyncSession]
    ) -> None:
        ann = await domain.person("ann")
        ws = await domain.workspace(ann)
        email = f"newhire-{uuid.uuid4().hex[:6]}@example.com"
        # The squatter registers the address (unverified) before the admin adds it.
        await make_user(db, email, verified=False)
        squatter = (await Api(domain.client).login(email))["access_token"]
        headers = {"Authorization": f"Bearer {squatter}"}
        await domain.call(
            "POST",
            f"/workspaces/{ws['id']}/members",
            ann,
            json={"email": email, "role": "admin"},
            expect=202,
        )
        token = await self._mailed_token(db, email)
        for answer in ("accept", "decline"):
            refused = await domain.call(
                "POST", f"/invitations/{answer}", None, json={"token": token}, headers=headers
            )
            body = await refused.json()
            assert (refused.status, body["details"]["reason"]) == (403, "email_unverified")
        await domain.call("GET", f"/workspaces/{ws['id']}", None, headers=headers, expect=404)

        # The owner of the mailbox proves it (a reset link: it also ends the squatter's
        # sessions) and can then accept.
        await domain.call(
            "POST", "/auth/password-reset/request", None, json={"email": email}, expect=202
        )
        reset = await mailed_token(db, email, "/reset-password")
        await domain.call(
            "POST",
            "/auth/password-reset/confirm",
            None,
            json={"token": reset, "new_password": "the real owner's password"},
            expect=204,
        )
        owner = (await Api(domain.client).login(email, "the real owner's password"))["access_token"]
        assert owner != squatter
        accepted = await domain.call(
            "POST",
            "/invitations/accept",
            None,
            json={"token": token},
            headers={"Authorization": f"Bearer {owner}"},
            expect=200,
        )
        assert accepted == {"workspace_id": ws["id"], "role": "admin"}

    async def _mailed_token(self, db: async_sessionmaker[AsyncSession], email: str) -> str:
        return await mailed_token(db, email, "/invitations")


class TestInvitationMail:
    async def test_the_workspace_name_cannot_forge_a_link_or_a_header(
        self, domain: Domain, db: async_sessionmaker[AsyncSession]
    ) -> None:
        """The name is the inviter's text: in the mail it is one line and no link (a
        name with a bidi override or a line separator is not even taken: 422)."""
        ann = await domain.person("ann")
        for forged in ("Payroll \u202e", "Payroll\u2028Click"):
            await domain.call("POST", "/workspaces", ann, json={"name": forged}, expect=422)
        name = "Payroll https://evil.example/login www.evil.example"
        ws = await domain.workspace(ann, name)
        email = f"target-{uuid.uuid4().hex[:6]}@example.com"
        await domain.call(
            "POST", f"/workspaces/{ws['id']}/invitations", ann, json={"email": email}, expect=201
        )
        async with db() as session:
            mail = (await session.scalars(select(DevMail).where(DevMail.to_addr == email))).one()
        text = mail.subject + "\n" + mail.body
        assert "evil.example" not in text
        assert "https://evil" not in text
        assert "\u202e" not in text
        assert "https[:]//evil[.]example/login www[.]evil[.]example" in mail.body
        links = re.findall(r"https?://\S+", text)
        assert len(links) == 1
        assert "/invitations#token=" in links[0]


class TestInvitationRateLimit:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"rate_invite_user": Rate(4, 3600)})

    async def test_only_invitations_that_mail_spend_the_inviters_limit(
        self, domain: Domain
    ) -> None:
        """Refused invitations — replacing an owner's as an admin, or a member's email —
        mail nothing and spend nothing: the admin still has all four."""
        ws, people = await domain.team()
        admin = people["admin"]
        await domain.call(
            "POST",
            f"/workspaces/{ws['id']}/invitations",
            people["owner"],
            json={"email": "own@example.com", "role": "owner"},
            expect=201,
        )
        for _ in range(3):
            for path in ("invitations", "members"):
                for email, refusal in (("own@example.com", 403), (people["member"].email, 409)):
                    await domain.call(
                        "POST",
                        f"/workspaces/{ws['id']}/{path}",
                        admin,
                        json={"email": email, "role": "viewer"},
                        expect=refusal,
                    )
        for n in range(4):
            await domain.call(
                "POST",
                f"/workspaces/{ws['id']}/invitations",
                admin,
                json={"email": f"new{n}@example.com"},
                expect=201,
            )
        await domain.call(
            "POST",
            f"/workspaces/{ws['id']}/invitations",
            admin,
            json={"email": "one-too-many@example.com"},
            expect=429,
        )
