"""The control message that tells every hub a service API key was revoked.

A hub remembers what a worker said of a key for ``API_KEY_CACHE_S`` (hub/publish.py).
So whoever revokes a key (``hubbub apikey revoke``), once the revocation has committed,
publishes on ``ctl.apikey.revoked`` (core NATS, JSON)::

    {"type": "api_key_revoked", "key_hash": "<the key's SHA-256, hex>"}

and each hub drops the key at once. A hub that misses the message (disconnected from
NATS just then) still forgets the key when its cache entry runs out.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from hubbub.contracts.subjects import Subjects

API_KEY_CACHE_S = 30.0  # how long a hub remembers what a worker said of a key


class ApiKeyRevoked(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: Literal["api_key_revoked"] = "api_key_revoked"
    key_hash: str = Field(pattern=r"^[0-9a-f]{64}$")


def api_key_revocations(subjects: Subjects) -> str:
    """The subject of ``ApiKeyRevoked`` messages (under ``ctl.``, which hubs may read and
    workers, and the commands acting as one, may write)."""
    return subjects.control_api_keys
