"""Access tokens for tests of the realtime hub, signed like a worker signs them."""

from __future__ import annotations

import time
import uuid

from hubbub.config import Settings
from hubbub.tokens import AccessTokens


class TestTokens:
    __test__ = False  # not a test class

    def __init__(self, settings: Settings) -> None:
        self.tokens = AccessTokens.from_settings(settings, signing=True)

    def issue(
        self,
        user_id: str,
        *,
        role: str = "member",
        ttl: float | None = None,
        sid: str | None = None,
    ) -> str:
        """A token for ``user_id`` that ends in ``ttl`` seconds (default: the usual TTL)."""
        now = time.time()
        if ttl is not None:
            now -= self.tokens.ttl_s - ttl  # issued earlier, so that it ends sooner
        issued = self.tokens.issue(
            user_id=user_id, role=role, session_id=sid or uuid.uuid4().hex, now=now
        )
        return issued.token
