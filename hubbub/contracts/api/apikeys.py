"""Service API keys: how backend services prove who they are to the publish API.

A key is ``hbk_`` + 256 random bits, shown once when created (``hubbub apikey create``)
and stored as its SHA-256 digest. Each key names the channels it may publish on, as
patterns: ``public:*`` (every channel of a kind) or ``public:news`` (one channel).
"""

from __future__ import annotations

import fnmatch

from pydantic import BaseModel, Field

from hubbub.contracts.operations import Access, Catalog, Operation

KEY_PREFIX = "hbk_"


class AuthenticateKeyParams(BaseModel):
    key_hash: str = Field(pattern=r"^[0-9a-f]{64}$")


class ServiceIdentity(BaseModel):
    name: str
    channels: list[str]

    def may_publish(self, channel: str) -> bool:
        return any(fnmatch.fnmatchcase(channel, pattern) for pattern in self.channels)


catalog = Catalog()

authenticate = catalog.add(
    Operation(
        name="apikeys.authenticate",
        params=AuthenticateKeyParams,
        result=ServiceIdentity,
        access=Access.INTERNAL,
        summary="Which service holds this key (by digest), and where may it publish?",
        timeout=3.0,
    )
)
