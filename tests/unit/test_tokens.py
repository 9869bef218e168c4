"""Access tokens: issued by workers, verified by hubs — and every forgery refused."""

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
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from hubbub.config import ConfigError, Settings
from hubbub.contracts.errors import Unauthorized
from hubbub.tokens import AccessTokens

SECRET = b"s" * 48


def hs256(**kwargs: Any) -> AccessTokens:
    return AccessTokens(algorithm="HS256", signing_key=SECRET, verifying_key=SECRET, **kwargs)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "sub": "user-1",
        "role": "member",
        "sid": "session-1",
        "jti": "j1",
        "iat": now,
        "nbf": now,
        "exp": now + 900,
        "iss": "hubbub",
        "aud": "hubbub",
    }
    return {**base, **overrides}


def reason(tokens: AccessTokens, token: str) -> str:
    with pytest.raises(Unauthorized) as caught:
        tokens.verify(token)
    return str(caught.value.details["reason"])


def write_pem(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class TestIssueAndVerify:
    def test_a_token_it_issued_verifies_to_the_same_claims(self) -> None:
        tokens = hs256()
        issued = tokens.issue(user_id="u1", role="admin", session_id="s1")
        assert tokens.verify(issued.token) == issued.claims

    def test_the_token_carries_every_required_claim(self) -> None:
        issued = hs256(ttl_s=600).issue(user_id="u1", role="member", session_id="s1", now=1000)
        payload = jwt.decode(issued.token, options={"verify_signature": False})
        assert payload == {
            "sub": "u1",
            "role": "member",
            "sid": "s1",
            "jti": issued.claims.jti,
            "iat": 1000,
            "nbf": 1000,
            "exp": 1600,
            "iss": "hubbub",
            "aud": "hubbub",
        }

    def test_each_token_has_its_own_jti(self) -> None:
        tokens = hs256()
        first = tokens.issue(user_id="u", role="member", session_id="s")
        second = tokens.issue(user_id="u", role="member", session_id="s")
        assert first.claims.jti != second.claims.jti

    def test_a_verify_only_instance_cannot_issue(self) -> None:
        tokens = AccessTokens(algorithm="HS256", verifying_key=SECRET)
        with pytest.raises(RuntimeError, match="only verify"):
            tokens.issue(user_id="u", role="member", session_id="s")


class TestForgeries:
    def test_a_tampered_payload_fails_the_signature(self) -> None:
        """Raising one's role in the payload breaks the signature."""
        tokens = hs256()
        header, _, signature = tokens.issue(user_id="u", role="member", session_id="s").token.split(
            "."
        )
        forged_payload = b64(orjson.dumps(claims(role="admin")))
        assert reason(tokens, f"{header}.{forged_payload}.{signature}") == "signature"

    def test_a_flipped_signature_byte_is_refused(self) -> None:
        tokens = hs256()
        token = tokens.issue(user_id="u", role="member", session_id="s").token
        head, _, signature = token.rpartition(".")
        flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
        assert reason(tokens, f"{head}.{flipped}") == "signature"

    def test_a_token_signed_with_another_secret_is_refused(self) -> None:
        other = AccessTokens(algorithm="HS256", signing_key=b"o" * 48, verifying_key=b"o" * 48)
        token = other.issue(user_id="u", role="admin", session_id="s").token
        assert reason(hs256(), token) == "signature"

    def test_alg_none_is_refused(self) -> None:
        header = b64(orjson.dumps({"alg": "none", "typ": "JWT"}))
        payload = b64(orjson.dumps(claims(role="admin")))
        assert reason(hs256(), f"{header}.{payload}.") == "alg"

    def test_hs256_signed_with_the_public_key_is_refused_under_rs256(
        self, rsa_key: rsa.RSAPrivateKey
    ) -> None:
        """The classic confusion: the public key (known to all) used as an HMAC secret."""
        tokens = AccessTokens(algorithm="RS256", verifying_key=rsa_key.public_key())
        public_pem = rsa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        signing_input = (
            b64(orjson.dumps({"alg": "HS256", "typ": "JWT"}))
            + "."
            + b64(orjson.dumps(claims(role="admin")))
        )
        signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
        assert reason(tokens, f"{signing_input}.{b64(signature)}") == "alg"

    def test_an_rs256_token_is_refused_by_an_eddsa_verifier(
        self, rsa_key: rsa.RSAPrivateKey
    ) -> None:
        signer = AccessTokens(
            algorithm="RS256", signing_key=rsa_key, verifying_key=rsa_key.public_key()
        )
        ed = ed25519.Ed25519PrivateKey.generate()
        verifier = AccessTokens(algorithm="EdDSA", verifying_key=ed.public_key())
        token = signer.issue(user_id="u", role="member", session_id="s").token
        assert reason(verifier, token) == "alg"

    @pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "a.b", "🙂.🙂.🙂"])
    def test_garbage_is_malformed(self, garbage: str) -> None:
        assert reason(hs256(), garbage) == "malformed"


class TestClaims:
    def sign(self, payload: dict[str, Any]) -> str:
        return jwt.encode(payload, SECRET, algorithm="HS256")

    def test_an_expired_token_is_refused(self) -> None:
        past = int(time.time()) - 3600
        token = self.sign(claims(iat=past, nbf=past, exp=past + 900))
        assert reason(hs256(), token) == "expired"

    def test_an_expiry_within_the_leeway_is_still_accepted(self) -> None:
        """30 s of clock skew: a token 20 s past its expiry still passes."""
        now = int(time.time())
        token = self.sign(claims(iat=now - 920, nbf=now - 920, exp=now - 20))
        assert hs256(leeway_s=30).verify(token).sub == "user-1"

    def test_an_expiry_beyond_the_leeway_is_refused(self) -> None:
        now = int(time.time())
        token = self.sign(claims(iat=now - 960, nbf=now - 960, exp=now - 60))
        assert reason(hs256(leeway_s=30), token) == "expired"

    def test_a_token_not_valid_yet_is_refused(self) -> None:
        future = int(time.time()) + 600
        token = self.sign(claims(iat=future, nbf=future, exp=future + 900))
        assert reason(hs256(), token) == "immature"

    def test_a_wrong_audience_is_refused(self) -> None:
        assert reason(hs256(), self.sign(claims(aud="someone-else"))) == "aud"

    def test_a_wrong_issuer_is_refused(self) -> None:
        assert reason(hs256(), self.sign(claims(iss="evil"))) == "iss"

    @pytest.mark.parametrize("missing", ["sub", "role", "sid", "jti", "iat", "nbf", "exp"])
    def test_a_missing_claim_is_refused(self, missing: str) -> None:
        payload = claims()
        del payload[missing]
        assert reason(hs256(), self.sign(payload)) == "claims"

    def test_an_unknown_role_is_refused(self) -> None:
        assert reason(hs256(), self.sign(claims(role="root"))) == "claims"

    def test_a_non_string_subject_is_refused(self) -> None:
        assert reason(hs256(), self.sign(claims(sub=42))) in {"claims", "malformed"}


class TestKeysFromSettings:
    def settings(self, **kwargs: Any) -> Settings:
        return Settings(_env_file=None, **kwargs)  # type: ignore[arg-type]

    def test_hs256_uses_the_secret_key(self) -> None:
        tokens = AccessTokens.from_settings(self.settings(secret_key="k" * 40), signing=True)
        token = tokens.issue(user_id="u", role="member", session_id="s").token
        assert jwt.decode(token, "k" * 40, algorithms=["HS256"], audience="hubbub")["sub"] == "u"

    def test_hs256_without_a_secret_is_a_config_error(self) -> None:
        with pytest.raises(ConfigError, match="HUBBUB_SECRET_KEY"):
            AccessTokens.from_settings(self.settings(), signing=True)

    def test_eddsa_workers_sign_and_hubs_verify_with_the_public_file(self, tmp_path: Path) -> None:
        key = ed25519.Ed25519PrivateKey.generate()
        private = write_pem(
            tmp_path / "private.pem",
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        public = write_pem(
            tmp_path / "public.pem",
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
        )
        worker = AccessTokens.from_settings(
            self.settings(jwt_algorithm="EdDSA", jwt_private_key_file=private), signing=True
        )
        hub = AccessTokens.from_settings(
            self.settings(jwt_algorithm="EdDSA", jwt_public_key_file=public), signing=False
        )
        issued = worker.issue(user_id="u", role="member", session_id="s")
        assert hub.verify(issued.token) == issued.claims

    def test_signing_without_the_private_key_is_a_config_error(self, tmp_path: Path) -> None:
        key = ed25519.Ed25519PrivateKey.generate()
        public = write_pem(
            tmp_path / "public.pem",
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
        )
        with pytest.raises(ConfigError, match="HUBBUB_JWT_PRIVATE_KEY_FILE"):
            AccessTokens.from_settings(
                self.settings(jwt_algorithm="EdDSA", jwt_public_key_file=public), signing=True
            )

    def test_a_key_of_the_wrong_kind_is_a_config_error(
        self, tmp_path: Path, rsa_key: rsa.RSAPrivateKey
    ) -> None:
        private = write_pem(
            tmp_path / "rsa.pem",
            rsa_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        with pytest.raises(ConfigError, match="Ed25519"):
            AccessTokens.from_settings(
                self.settings(jwt_algorithm="EdDSA", jwt_private_key_file=private), signing=True
            )

    def test_a_missing_key_file_is_a_config_error_naming_it(self, tmp_path: Path) -> None:
        missing = tmp_path / "nope.pem"
        with pytest.raises(ConfigError, match=r"nope\.pem"):
            AccessTokens.from_settings(
                self.settings(jwt_algorithm="RS256", jwt_private_key_file=missing), signing=True
            )


class TestVerifiedCache:
    def sign(self, payload: dict[str, Any]) -> str:
        return jwt.encode(payload, SECRET, algorithm="HS256")

    def test_a_token_that_verified_is_not_checked_again(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        tokens = hs256()
        token = self.sign(claims())
        first = tokens.verify(token)
        monkeypatch.setattr(tokens, "_verify", lambda _t: pytest.fail("checked twice"))
        assert tokens.verify(token) == first

    def test_a_remembered_token_still_expires(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Remembered tokens are not trusted past their expiry (plus the leeway)."""
        tokens = hs256(leeway_s=30)
        now = int(time.time())
        token = self.sign(claims(iat=now, nbf=now, exp=now + 10))
        tokens.verify(token)
        monkeypatch.setattr(time, "time", lambda: now + 41)
        with pytest.raises(Unauthorized) as caught:
            tokens.verify(token)
        assert caught.value.details["reason"] == "expired"

    def test_a_token_differing_in_one_byte_is_checked_afresh(self) -> None:
        tokens = hs256()
        token = self.sign(claims())
        tokens.verify(token)
        forged = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
        assert reason(tokens, forged) == "signature"

    def test_bad_tokens_are_not_remembered(self) -> None:
        tokens = hs256()
        for _ in range(2):
            assert reason(tokens, "not.a.token") == "malformed"
