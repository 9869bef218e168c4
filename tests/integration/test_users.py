"""Users: one's own profile and password, and what admins may do to accounts."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.accounts.models import User
from handlers.pagination import encode_cursor
from hubbub.contracts.api.users import Role
from tests.support.accounts import PASSWORD, Api, bearer, make_user


@pytest.fixture
def api(hub_client: TestClient[Any, Any]) -> Api:
    return Api(hub_client)


async def signed_in(
    api: Api, db: async_sessionmaker[AsyncSession], email: str, role: Role = Role.MEMBER
) -> dict[str, Any]:
    await make_user(db, email, role=role)
    return await api.login(email)


class TestMe:
    async def test_me_needs_a_token(self, hub_client: TestClient[Any, Any]) -> None:
        response = await hub_client.get("/api/v1/users/me")
        assert (response.status, (await response.json())["code"]) == (401, "unauthorized")

    async def test_a_malformed_authorization_header_is_unauthorized(
        self, hub_client: TestClient[Any, Any]
    ) -> None:
        response = await hub_client.get("/api/v1/users/me", headers={"Authorization": "Basic YTpi"})
        assert "Bearer" in (await response.json())["detail"]

    async def test_the_display_name_can_be_changed(
        self, api: Api, hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
    ) -> None:
        tokens = await signed_in(api, db, "ann@example.com")
        response = await hub_client.patch(
            "/api/v1/users/me",
            json={"display_name": "  Ann Lee "},
            headers=bearer(tokens["access_token"]),
        )
        assert (response.status, (await response.json())["display_name"]) == (200, "Ann Lee")

    @pytest.mark.parametrize("body", [{}, {"display_name": None}])
    async def test_a_patch_that_changes_nothing_or_sends_null_is_422(
        self,
        api: Api,
        hub_client: TestClient[Any, Any],
        db: async_sessionmaker[AsyncSession],
        body: dict[str, Any],
    ) -> None:
        """As docs/domain.md says of every PATCH: it must change something, and a field
        may be left out but not set to null."""
        tokens = await signed_in(api, db, "ann@example.com")
        response = await hub_client.patch(
            "/api/v1/users/me", json=body, headers=bearer(tokens["access_token"])
        )
        assert (response.status, (await response.json())["code"]) == (422, "validation_failed")

    async def test_an_operation_that_takes_nothing_refuses_a_field_naming_it(
        self, api: Api, hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
    ) -> None:
        """Unknown fields are refused everywhere, so typos don't pass silently."""
        tokens = await signed_in(api, db, "ann@example.com")
        headers = bearer(tokens["access_token"])
        response = await hub_client.get("/api/v1/users/me?bogus=1", headers=headers)
        body = await response.json()
        assert (response.status, body["details"]["errors"][0]["loc"]) == (422, ["bogus"])
        response = await hub_client.get("/api/v1/users/me", headers=headers)
        assert response.status == 200

    async def test_the_role_cannot_be_changed_through_me(
        self, api: Api, hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
    ) -> None:
        tokens = await signed_in(api, db, "ann@example.com")
        response = await hub_client.patch(
            "/api/v1/users/me", json={"role": "admin"}, headers=bearer(tokens["access_token"])
        )
        assert (response.status, (await response.json())["code"]) == (422, "validation_failed")


class TestChangePassword:
    async def test_the_new_password_works_and_the_old_does_not(
        self, api: Api, hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
    ) -> None:
        tokens = await signed_in(api, db, "ann@example.com")
        response = await hub_client.post(
            "/api/v1/users/me/password",
            json={"current_password": PASSWORD, "new_password": "plum-orbit-kettle-42"},
            headers=bearer(tokens["access_token"]),
        )
        old = await hub_client.post(
            "/api/v1/auth/login", json={"email": "ann@example.com", "password": PASSWORD}
        )
        assert (response.status, old.status) == (204, 401)
        await api.login("ann@example.com", "plum-orbit-kettle-42")

    async def test_it_ends_the_other_sessions_but_not_this_one(
        self, api: Api, hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
    ) -> None:
        here = await signed_in(api, db, "ann@example.com")
        elsewhere = await api.login("ann@example.com")
        await hub_client.post(
            "/api/v1/users/me/password",
            json={"current_password": PASSWORD, "new_password": "plum-orbit-kettle-42"},
            headers=bearer(here["access_token"]),
        )
        assert (
            (await api.me(here["access_token"])).status,
            (await api.me(elsewhere["access_token"])).status,
            (await api.refresh(elsewhere["refresh_token"])).status,
        ) == (200, 401, 401)

    async def test_a_wrong_current_password_is_forbidden(
        self, api: Api, hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
    ) -> None:
        tokens = await signed_in(api, db, "ann@example.com")
        response = await hub_client.post(
            "/api/v1/users/me/password",
            json={"current_password": "not-my-password", "new_password": "plum-orbit-kettle-42"},
            headers=bearer(tokens["access_token"]),
        )
        assert (response.status, (await response.json())["code"]) == (403, "forbidden")

    async def test_the_new_password_meets_the_policy(
        self, api: Api, hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
    ) -> None:
        tokens = await signed_in(api, db, "ann@example.com")
        response = await hub_client.post(
            "/api/v1/users/me/password",
            json={"current_password": PASSWORD, "new_password": "password123"},
            headers=bearer(tokens["access_token"]),
        )
        body = await response.json()
        assert (response.status, body["details"]["errors"][0]["loc"]) == (422, ["new_password"])


class TestAdminAccess:
    async def test_a_member_is_forbidden_from_admin_operations(
        self, api: Api, hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
    ) -> None:
        tokens = await signed_in(api, db, "ann@example.com")
        response = await hub_client.get("/api/v1/users", headers=bearer(tokens["access_token"]))
        assert (response.status, (await response.json())["code"]) == (403, "forbidden")

    async def test_a_demoted_admins_still_valid_token_is_refused_by_the_worker(
        self, api: Api, hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
    ) -> None:
        """The token still says admin; the database, checked by the handler, does not."""
        tokens = await signed_in(api, db, "root@example.com", Role.ADMIN)
        async with db() as session, session.begin():
            user = (await session.execute(select(User))).scalar_one()
            user.role = Role.MEMBER.value
        response = await hub_client.get("/api/v1/users", headers=bearer(tokens["access_token"]))
        assert (response.status, (await response.json())["detail"]) == (
            403,
            "only admins may do this",
        )


class TestListUsers:
    @pytest.fixture
    async def admin(self, api: Api, db: async_sessionmaker[AsyncSession]) -> dict[str, str]:
        tokens = await signed_in(api, db, "root@example.com", Role.ADMIN)
        for name in ("carol", "alice", "bob", "dave", "erin"):
            await make_user(db, f"{name}@example.com", display_name=name.title())
        return bearer(tokens["access_token"])

    async def test_pages_follow_each_other_in_email_order(
        self, hub_client: TestClient[Any, Any], admin: dict[str, str]
    ) -> None:
        seen: list[str] = []
        cursor = None
        while True:
            query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
            page = await (await hub_client.get("/api/v1/users", params=query, headers=admin)).json()
            seen.extend(user["email"].split("@")[0] for user in page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == ["alice", "bob", "carol", "dave", "erin", "root"]

    async def test_a_search_matches_email_or_display_name(
        self, hub_client: TestClient[Any, Any], admin: dict[str, str]
    ) -> None:
        response = await hub_client.get("/api/v1/users", params={"q": "AR"}, headers=admin)
        emails = [user["email"] for user in (await response.json())["items"]]
        assert emails == ["carol@example.com"]

    async def test_search_wildcards_are_taken_literally(
        self, hub_client: TestClient[Any, Any], admin: dict[str, str]
    ) -> None:
        response = await hub_client.get("/api/v1/users", params={"q": "%"}, headers=admin)
        assert (await response.json())["items"] == []

    async def test_the_list_filters_by_role(
        self, hub_client: TestClient[Any, Any], admin: dict[str, str]
    ) -> None:
        response = await hub_client.get("/api/v1/users", params={"role": "admin"}, headers=admin)
        assert [u["email"] for u in (await response.json())["items"]] == ["root@example.com"]

    async def test_a_forged_cursor_is_a_bad_request(
        self, hub_client: TestClient[Any, Any], admin: dict[str, str]
    ) -> None:
        response = await hub_client.get("/api/v1/users", params={"cursor": "@@@"}, headers=admin)
        assert (response.status, (await response.json())["code"]) == (400, "bad_request")

    @pytest.mark.parametrize(
        "params",
        [
            {"q": "a\x00b"},  # PostgreSQL's text cannot hold a NUL
            {"cursor": encode_cursor("users.email", "a\x00@b")},
        ],
    )
    async def test_a_nul_character_is_refused_not_sent_to_the_database(
        self, hub_client: TestClient[Any, Any], admin: dict[str, str], params: dict[str, str]
    ) -> None:
        response = await hub_client.get("/api/v1/users", params=params, headers=admin)
        assert response.status in (400, 422), await response.text()

    async def test_an_unknown_query_parameter_is_named(
        self, hub_client: TestClient[Any, Any], admin: dict[str, str]
    ) -> None:
        response = await hub_client.get("/api/v1/users", params={"sort": "x"}, headers=admin)
        body = await response.json()
        assert (response.status, body["details"]["errors"][0]["loc"]) == (422, ["sort"])


class TestUpdateUser:
    @pytest.fixture
    async def admin(self, api: Api, db: async_sessionmaker[AsyncSession]) -> dict[str, str]:
        tokens = await signed_in(api, db, "root@example.com", Role.ADMIN)
        return bearer(tokens["access_token"])

    async def test_an_admin_changes_a_role(
        self, hub_client: TestClient[Any, Any], admin: dict[str, str], db: Any
    ) -> None:
        ann = await make_user(db, "ann@example.com")
        response = await hub_client.patch(
            f"/api/v1/users/{ann}", json={"role": "admin"}, headers=admin
        )
        assert (response.status, (await response.json())["role"]) == (200, "admin")

    async def test_a_deactivated_users_valid_access_token_is_refused_at_once(
        self, api: Api, hub_client: TestClient[Any, Any], admin: dict[str, str], db: Any
    ) -> None:
        ann = await make_user(db, "ann@example.com")
        tokens = await api.login("ann@example.com")
        assert (await api.me(tokens["access_token"])).status == 200
        response = await hub_client.patch(
            f"/api/v1/users/{ann}", json={"is_active": False}, headers=admin
        )
        assert response.status == 200
        refused = await api.me(tokens["access_token"])
        assert (refused.status, (await refused.json())["details"]["reason"]) == (401, "deactivated")
        assert (await api.refresh(tokens["refresh_token"])).status == 401

    async def test_a_reactivated_user_can_sign_in_again(
        self, api: Api, hub_client: TestClient[Any, Any], admin: dict[str, str], db: Any
    ) -> None:
        ann = await make_user(db, "ann@example.com")
        old = await api.login("ann@example.com")
        await hub_client.patch(f"/api/v1/users/{ann}", json={"is_active": False}, headers=admin)
        await hub_client.patch(f"/api/v1/users/{ann}", json={"is_active": True}, headers=admin)
        new = await api.login("ann@example.com")
        assert (
            (await api.me(new["access_token"])).status,
            (await api.me(old["access_token"])).status,
        ) == (200, 401)

    async def test_the_last_admin_cannot_be_demoted(
        self, hub_client: TestClient[Any, Any], admin: dict[str, str], db: Any
    ) -> None:
        async with db() as session:
            root = (await session.execute(select(User.id))).scalar_one()
        response = await hub_client.patch(
            f"/api/v1/users/{root}", json={"role": "member"}, headers=admin
        )
        assert (response.status, (await response.json())["code"]) == (409, "conflict")

    async def test_an_admin_may_step_down_when_another_remains(
        self, hub_client: TestClient[Any, Any], admin: dict[str, str], db: Any
    ) -> None:
        await make_user(db, "second@example.com", role=Role.ADMIN)
        async with db() as session:
            root = (
                await session.execute(select(User.id).where(User.email == "root@example.com"))
            ).scalar_one()
        response = await hub_client.patch(
            f"/api/v1/users/{root}", json={"role": "member"}, headers=admin
        )
        assert response.status == 200

    async def test_two_admins_demoting_each_other_at_once_leave_one_admin(
        self, api: Api, hub_client: TestClient[Any, Any], admin: dict[str, str], db: Any
    ) -> None:
        import asyncio

        second_id = await make_user(db, "second@example.com", role=Role.ADMIN)
        second = bearer((await api.login("second@example.com"))["access_token"])
        async with db() as session:
            root_id = (
                await session.execute(select(User.id).where(User.email == "root@example.com"))
            ).scalar_one()
        one, other = await asyncio.gather(
            hub_client.patch(f"/api/v1/users/{second_id}", json={"role": "member"}, headers=admin),
            hub_client.patch(f"/api/v1/users/{root_id}", json={"role": "member"}, headers=second),
        )
        async with db() as session:
            admins = (
                (await session.execute(select(User.email).where(User.role == "admin")))
                .scalars()
                .all()
            )
        assert (sorted([one.status, other.status]), len(admins)) == ([200, 403], 1)

    async def test_an_update_with_nothing_to_change_is_a_validation_problem(
        self, hub_client: TestClient[Any, Any], admin: dict[str, str], db: Any
    ) -> None:
        ann = await make_user(db, "ann@example.com")
        response = await hub_client.patch(f"/api/v1/users/{ann}", json={}, headers=admin)
        assert response.status == 422

    @pytest.mark.parametrize(
        "body",
        [{"role": None, "is_active": None}, {"is_active": None}, {"is_active": 0}, {"role": 1}],
    )
    async def test_null_or_a_wrong_type_is_refused_not_taken_for_a_change(
        self, hub_client: TestClient[Any, Any], admin: dict[str, str], db: Any, body: Any
    ) -> None:
        """The document says role and is_active are never null and is_active is a
        boolean; `0` is not `false` (it would deactivate the account)."""
        ann = await make_user(db, "ann@example.com")
        response = await hub_client.patch(f"/api/v1/users/{ann}", json=body, headers=admin)
        problem = await response.json()
        assert (response.status, problem["code"]) == (422, "validation_failed")
        me = await hub_client.get(f"/api/v1/users/{ann}", headers=admin)
        assert (await me.json())["is_active"] is True

    async def test_an_unknown_user_is_not_found(
        self, hub_client: TestClient[Any, Any], admin: dict[str, str]
    ) -> None:
        response = await hub_client.patch(
            "/api/v1/users/00000000-0000-0000-0000-000000000000",
            json={"is_active": False},
            headers=admin,
        )
        assert (response.status, (await response.json())["code"]) == (404, "not_found")

    async def test_a_malformed_user_id_names_the_field(
        self, hub_client: TestClient[Any, Any], admin: dict[str, str]
    ) -> None:
        response = await hub_client.get("/api/v1/users/not-a-uuid", headers=admin)
        body = await response.json()
        assert (response.status, body["details"]["errors"][0]["loc"]) == (422, ["user_id"])
