"""Access tokens for tests of the realtime hub (HS256 with the test secret)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt

from hubbub.contracts.errors import Unauthorized

ISSUER = AUDIENCE = "hubbub"


@dataclass(frozen=True)
class Claims:
    sub: str
    role: str
    sid: str
    exp: int


class TestTokens:
    __test__ = False  # not a test class

    def __init__(self, secret: str) -> None:
        self.secret = secret

    def issue(
        self, user_id: str, *, role: str = "member", ttl: float = 900, sid: str | None = None
    ) -> str:
        now = int(time.time())
        return jwt.encode(
            {
                "sub": user_id,
                "role": role,
                "sid": sid or uuid.uuid4().hex,
                "jti": uuid.uuid4().hex,
                "iat": now,
                "nbf": now,
                "exp": now + ttl,
                "iss": ISSUER,
                "aud": AUDIENCE,
            },
            self.secret,
            algorithm="HS256",
        )

    def verify(self, token: str) -> Claims:
        try:
            p = jwt.decode(
                token, self.secret, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"bad token: {exc}") from None
        return Claims(p["sub"], p["role"], p["sid"], int(p["exp"]))
