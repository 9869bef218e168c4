"""Access tokens: JWTs that workers issue and hubs verify, with no I/O on either side.

Claims: ``sub`` (user id), ``role``, ``sid`` (the session, which the deny-list names),
``jti``, ``iat``, ``nbf``, ``exp``, ``iss``, ``aud`` — all required when verifying.

Algorithms: HS256 with the configured secret (default), or EdDSA (Ed25519) / RS256 with
PEM key files: workers sign with the private key, hubs need only the public one. The
verifier accepts exactly the configured algorithm, so a token with ``alg: none`` or an
HS256 token "signed" with the public key of an RS256 deployment is refused; ``iss`` and
``aud`` must match; ``exp``/``nbf``/``iat`` allow ``leeway`` seconds of clock skew.
"""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed448, ed25519, rsa

from hubbub.config import ConfigError, Settings
from hubbub.contracts.errors import Unauthorized

VERIFIED_CACHE_SIZE = 10_000  # tokens remembered as verified, per process
REQUIRED_CLAIMS = ("sub", "role", "sid", "jti", "iat", "nbf", "exp", "iss", "aud")
ROLES = frozenset({"admin", "member"})

SigningKey = bytes | ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey | rsa.RSAPrivateKey
VerifyingKey = bytes | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey | rsa.RSAPublicKey


@dataclass(frozen=True, slots=True)
class AccessClaims:
    sub: str
    role: str
    sid: str
    jti: str
    iat: int
    exp: int


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    claims: AccessClaims
    expires_in: int


class AccessTokens:
    """Issues (with a signing key) and verifies (always) access tokens."""

    def __init__(
        self,
        *,
        algorithm: str,
        verifying_key: VerifyingKey,
        signing_key: SigningKey | None = None,
        issuer: str = "hubbub",
        audience: str = "hubbub",
        ttl_s: int = 900,
        leeway_s: int = 30,
    ) -> None:
        self.algorithm = algorithm
        self.issuer = issuer
        self.audience = audience
        self.ttl_s = ttl_s
        self.leeway_s = leeway_s
        self._signing_key = signing_key
        self._verifying_key = verifying_key
        self._jwt = jwt.PyJWT(options={"require": list(REQUIRED_CLAIMS)})
        self._verified: dict[str, AccessClaims] = {}

    @classmethod
    def from_settings(cls, settings: Settings, *, signing: bool) -> AccessTokens:
        """Load the keys the settings name; ``signing`` also needs the private key.

        Raises ``ConfigError`` naming the setting when a key is missing or unfit.
        """
        algorithm = settings.jwt_algorithm
        signing_key: SigningKey | None
        if algorithm == "HS256":
            if not settings.secret_key:
                raise ConfigError("HUBBUB_SECRET_KEY is needed to sign HS256 access tokens")
            signing_key = settings.secret_key.encode()
            verifying_key: VerifyingKey = signing_key
        else:
            private = _load_private(settings.jwt_private_key_file, algorithm)
            signing_key = private
            if settings.jwt_public_key_file is not None:
                verifying_key = _load_public(settings.jwt_public_key_file, algorithm)
            elif private is not None:
                verifying_key = private.public_key()
            else:
                raise ConfigError(
                    f"HUBBUB_JWT_ALGORITHM={algorithm} needs HUBBUB_JWT_PUBLIC_KEY_FILE "
                    "(or HUBBUB_JWT_PRIVATE_KEY_FILE) to verify access tokens"
                )
            if signing and private is None:
                raise ConfigError(
                    f"HUBBUB_JWT_ALGORITHM={algorithm} needs HUBBUB_JWT_PRIVATE_KEY_FILE "
                    "to sign access tokens"
                )
        return cls(
            algorithm=algorithm,
            signing_key=signing_key if signing else None,
            verifying_key=verifying_key,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            ttl_s=settings.access_token_ttl_s,
            leeway_s=settings.jwt_leeway_s,
        )

    def issue(
        self, *, user_id: str, role: str, session_id: str, now: float | None = None
    ) -> IssuedToken:
        if self._signing_key is None:
            raise RuntimeError("these AccessTokens only verify: no signing key was loaded")
        issued_at = int(time.time() if now is None else now)
        claims = AccessClaims(
            sub=user_id,
            role=role,
            sid=session_id,
            jti=uuid.uuid4().hex,
            iat=issued_at,
            exp=issued_at + self.ttl_s,
        )
        payload: dict[str, Any] = {
            "sub": claims.sub,
            "role": claims.role,
            "sid": claims.sid,
            "jti": claims.jti,
            "iat": claims.iat,
            "nbf": claims.iat,
            "exp": claims.exp,
            "iss": self.issuer,
            "aud": self.audience,
        }
        token = self._jwt.encode(payload, self._signing_key, algorithm=self.algorithm)
        return IssuedToken(token, claims, self.ttl_s)

    def verify(self, token: str) -> AccessClaims:
        """The token's claims, or ``Unauthorized`` saying what is wrong with it.

        A token that verified once is remembered (by its exact text: a changed byte is a
        different key): a client sends the same token with every request for up to its
        lifetime, and the signature check is most of a REST request's cost in the hub.
        Expiry is checked on every use; revocation is the caller's check, as always.
        """
        if not token.isascii():
            # A JWT is ASCII; a header byte that is not UTF-8 arrives as a lone surrogate,
            # which the JWT library cannot even encode.
            raise Unauthorized("the access token is malformed", reason="malformed")
        claims = self._verified.get(token)
        if claims is not None:
            if time.time() > claims.exp + self.leeway_s:
                del self._verified[token]
                raise Unauthorized("the access token has expired", reason="expired")
            return claims
        claims = self._verify(token)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            del self._verified[next(iter(self._verified))]  # the oldest
        self._verified[token] = claims
        return claims

    def _verify(self, token: str) -> AccessClaims:
        try:
            payload = self._jwt.decode(
                token,
                self._verifying_key,
                algorithms=[self.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the access token has expired", reason="expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthorized("the access token is not valid yet", reason="immature") from None
        except jwt.InvalidAudienceError:
            raise Unauthorized("the access token is for another audience", reason="aud") from None
        except jwt.InvalidIssuerError:
            raise Unauthorized("the access token has another issuer", reason="iss") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthorized(
                f"the access token lacks the {exc.claim!r} claim", reason="claims"
            ) from None
        except jwt.InvalidAlgorithmError:
            raise Unauthorized(
                "the access token is not signed with the expected algorithm", reason="alg"
            ) from None
        except jwt.InvalidSignatureError:
            raise Unauthorized(
                "the access token's signature is wrong", reason="signature"
            ) from None
        except jwt.PyJWTError:
            raise Unauthorized("the access token is malformed", reason="malformed") from None
        try:
            claims = AccessClaims(
                sub=_text(payload["sub"]),
                role=_text(payload["role"]),
                sid=_text(payload["sid"]),
                jti=_text(payload["jti"]),
                iat=int(payload["iat"]),
                exp=int(payload["exp"]),
            )
        except (TypeError, ValueError):
            raise Unauthorized("the access token's claims are malformed", reason="claims") from None
        if claims.role not in ROLES:
            raise Unauthorized("the access token names an unknown role", reason="claims")
        return claims


def new_opaque_token() -> str:
    """A refresh or reset token: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def _text(value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > 200:
        raise ValueError("not a short string")
    return value


def _read(path: Path, setting: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{setting}={path} cannot be read: {exc.strerror}") from None


def _check_key_type(key: object, algorithm: str, setting: str) -> None:
    if algorithm == "EdDSA":
        ok = isinstance(
            key,
            ed25519.Ed25519PrivateKey
            | ed25519.Ed25519PublicKey
            | ed448.Ed448PrivateKey
            | ed448.Ed448PublicKey,
        )
    else:
        ok = isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey) and key.key_size >= 2048
    if not ok:
        wanted = "an Ed25519 or Ed448 key" if algorithm == "EdDSA" else "an RSA key of 2048+ bits"
        raise ConfigError(f"{setting} must hold {wanted} for HUBBUB_JWT_ALGORITHM={algorithm}")


def _load_private(
    path: Path | None, algorithm: str
) -> ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey | rsa.RSAPrivateKey | None:
    if path is None:
        return None
    setting = "HUBBUB_JWT_PRIVATE_KEY_FILE"
    try:
        key = serialization.load_pem_private_key(_read(path, setting), password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"{setting}={path} is not an unencrypted PEM private key: {exc}"
        ) from None
    _check_key_type(key, algorithm, setting)
    assert isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey | rsa.RSAPrivateKey)
    return key


def _load_public(
    path: Path, algorithm: str
) -> ed25519.Ed25519PublicKey | ed448.Ed448PublicKey | rsa.RSAPublicKey:
    setting = "HUBBUB_JWT_PUBLIC_KEY_FILE"
    try:
        key = serialization.load_pem_public_key(_read(path, setting))
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{setting}={path} is not a PEM public key: {exc}") from None
    _check_key_type(key, algorithm, setting)
    assert isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey | rsa.RSAPublicKey)
    return key
