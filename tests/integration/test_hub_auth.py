"""The hub's token checks over REST: forged, expired or revoked tokens never get in, and
every refusal is a problem document, never a stack trace."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from pathlib import Path
from typing import Any

import jwt
import orjson
import pytest
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.app import create_app
from hubbub.config import Settings
from tests.conftest import TEST_SECRET
from tests.support import ops
from tests.support.accounts import Api, bearer, make_user

PROBLEM = "application/problem+json"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def claims(user_id: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "sub": user_id,
        "role": "admin",
        "sid": "00000000-0000-0000-0000-000000000001",
        "jti": "j",
        "iat": now,
        "nbf": now,
        "exp": now + 900,
        "iss": "hubbub",
        "aud": "hubbub",
        **overrides,
    }


async def refused(client: TestClient[Any, Any], token: str) -> tuple[int, str, str, str]:
    response = await client.get("/api/v1/users/me", headers=bearer(token))
    body = await response.json()
    text = await response.text()
    assert "Traceback" not in text
    return response.status, response.content_type, body["code"], body["details"]["reason"]


@pytest.fixture
async def user_id(db: async_sessionmaker[AsyncSession]) -> str:
    return await make_user(db, "ann@example.com")


class TestHs256Hub:
    async def test_a_properly_signed_token_gets_in(
        self, hub_client: TestClient[Any, Any], user_id: str
    ) -> None:
        """The control case: the forgeries below differ from this in one thing each."""
        token = jwt.encode(claims(user_id, role="member"), TEST_SECRET, algorithm="HS256")
        assert (await hub_client.get("/api/v1/users/me", headers=bearer(token))).status == 200

    async def test_a_tampered_token_is_refused(
        self, hub_client: TestClient[Any, Any], user_id: str
    ) -> None:
        token = jwt.encode(claims(user_id, role="member"), TEST_SECRET, algorithm="HS256")
        head, _, signature = token.split(".")
        forged = b64(orjson.dumps(claims(user_id, role="admin")))
        assert await refused(hub_client, f"{head}.{forged}.{signature}") == (
            401,
            PROBLEM,
            "unauthorized",
            "signature",
        )

    async def test_alg_none_is_refused(
        self, hub_client: TestClient[Any, Any], user_id: str
    ) -> None:
        header = b64(orjson.dumps({"alg": "none", "typ": "JWT"}))
        token = f"{header}.{b64(orjson.dumps(claims(user_id)))}."
        assert (await refused(hub_client, token))[3] == "alg"

    async def test_an_expired_token_is_refused(
        self, hub_client: TestClient[Any, Any], user_id: str
    ) -> None:
        past = int(time.time()) - 3600
        token = jwt.encode(
            claims(user_id, iat=past, nbf=past, exp=past + 900), TEST_SECRET, algorithm="HS256"
        )
        assert (await refused(hub_client, token))[3] == "expired"

    @pytest.mark.parametrize(("claim", "value"), [("aud", "other-app"), ("iss", "evil")])
    async def test_a_wrong_audience_or_issuer_is_refused(
        self, hub_client: TestClient[Any, Any], user_id: str, claim: str, value: str
    ) -> None:
        token = jwt.encode(claims(user_id, **{claim: value}), TEST_SECRET, algorithm="HS256")
        assert (await refused(hub_client, token))[3] == claim

    async def test_a_refused_token_on_a_public_operation_leaves_the_caller_anonymous(
        self, hub_client: TestClient[Any, Any]
    ) -> None:
        """A stale token in the header must not stop a login."""
        response = await hub_client.post(
            "/api/v1/test/echo", json={}, headers=bearer("garbage.token.here")
        )
        assert response.status == 200


class TestRs256Hub:
    @pytest.fixture
    def rsa_key(self) -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    @pytest.fixture
    def settings(self, settings: Settings, tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> Settings:
        private = tmp_path / "jwt.pem"
        private.write_bytes(
            rsa_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        public = tmp_path / "jwt.pub.pem"
        public.write_bytes(
            rsa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        return settings.model_copy(
            update={
                "jwt_algorithm": "RS256",
                "jwt_private_key_file": private,
                "jwt_public_key_file": public,
            }
        )

    @pytest.fixture
    async def public_only_hub(
        self, settings: Settings, aiohttp_client: Any, worker: Any
    ) -> TestClient[Any, Any]:
        """A hub given only the public key (as in production), with a worker that signs."""
        hub_settings = settings.model_copy(update={"jwt_private_key_file": None})
        client: TestClient[Any, Any] = await aiohttp_client(
            create_app(hub_settings, ops.catalog_with_tests())
        )
        return client

    async def test_worker_issued_rs256_tokens_get_in(
        self, public_only_hub: TestClient[Any, Any], user_id: str
    ) -> None:
        tokens = await Api(public_only_hub).login("ann@example.com")
        header = jwt.get_unverified_header(tokens["access_token"])
        response = await Api(public_only_hub).me(tokens["access_token"])
        assert (header["alg"], response.status) == ("RS256", 200)

    async def test_an_hs256_token_signed_with_the_public_key_is_refused(
        self,
        public_only_hub: TestClient[Any, Any],
        user_id: str,
        rsa_key: rsa.RSAPrivateKey,
    ) -> None:
        """The public key is public: as an HMAC secret it would let anyone mint tokens."""
        public_pem = rsa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        signing_input = (
            b64(orjson.dumps({"alg": "HS256", "typ": "JWT"}))
            + "."
            + b64(orjson.dumps(claims(user_id)))
        )
        signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
        assert await refused(public_only_hub, f"{signing_input}.{b64(signature)}") == (
            401,
            PROBLEM,
            "unauthorized",
            "alg",
        )


class TestRevokedAtOnce:
    async def test_a_new_hub_knows_revocations_made_before_it_started(
        self,
        settings: Settings,
        aiohttp_client: Any,
        hub_client: TestClient[Any, Any],
        db: async_sessionmaker[AsyncSession],
    ) -> None:
        """The deny-list in Redis: a hub started after the logout refuses the token too."""
        await make_user(db, "ann@example.com")
        tokens = await Api(hub_client).login("ann@example.com")
        await hub_client.post("/api/v1/auth/logout", headers=bearer(tokens["access_token"]))
        fresh_hub = await aiohttp_client(create_app(settings, ops.catalog_with_tests()))
        assert (await Api(fresh_hub).me(tokens["access_token"])).status == 401
