"""A caller that cannot be forged: hubs sign the caller and deadline of each request.

A worker believes the ``caller`` of an envelope (who asks, with which role) only when its
``caller_sig`` is right: HMAC-SHA256, under a key hubs and workers share, of the caller's
JSON and the deadline::

    caller_sig = hex(HMAC-SHA256(key, <caller JSON> "|" <deadline in unix ms>))

The caller's JSON is its compact ``orjson`` form with the keys in the order the hub sent
them — what a worker gets back by re-serializing the parsed ``caller`` with ``orjson``.
Only the hub can produce the signature, so a client that can publish on ``svc.>`` without
being a hub cannot claim to be a user; signing the deadline too means a captured
envelope cannot be replayed once its deadline has passed.

The key is ``HUBBUB_CALLER_KEY`` when set, else derived from ``HUBBUB_SECRET_KEY`` (HKDF
with a label of its own, so it is never the key that signs access tokens).
"""

from __future__ import annotations

import hmac
from binascii import hexlify
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

if TYPE_CHECKING:
    from hubbub.config import Settings

_LABEL = b"hubbub caller signature v1"


def caller_key(settings: Settings) -> bytes:
    """The signing key: the configured one, or one derived from the secret key."""
    if settings.caller_key:
        return settings.caller_key.encode()
    if not settings.secret_key:
        raise ValueError("signing callers needs HUBBUB_SECRET_KEY or HUBBUB_CALLER_KEY")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_LABEL).derive(
        settings.secret_key.encode()
    )


_CACHED_CALLERS = 4096

# OpenSSL's HMAC object itself, when hashlib has it: ``hmac.HMAC`` wraps the same object
# in Python, and its ``copy``/``digest`` cost a request about a microsecond more on each
# side. Both have ``copy``, ``update`` and ``digest``; the MAC is the same.
_hmac_new: Callable[[bytes, bytes, str], Any]
try:
    from _hashlib import hmac_new as _hmac_new
except ImportError:  # a Python built without OpenSSL
    _hmac_new = hmac.new


class CallerSigner:
    """Signs (on hubs) and checks (on workers) an envelope's caller and deadline.

    The HMAC state after ``<caller JSON>|`` is kept per caller (one connection sends many
    requests as one caller), so a request costs only its deadline's share of the hash.
    """

    __slots__ = ("_after_caller", "_key")

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._after_caller: dict[bytes, Any] = {}  # caller JSON → HMAC state after it

    def _digest(self, caller_json: bytes, deadline_ms: int) -> bytes:
        """The signature in hex, as ASCII bytes."""
        state = self._after_caller.get(caller_json)
        if state is None:
            if len(self._after_caller) >= _CACHED_CALLERS:
                self._after_caller.clear()
            state = self._after_caller[caller_json] = _hmac_new(
                self._key, caller_json + b"|", "sha256"
            )
        mac = state.copy()
        mac.update(b"%d" % deadline_ms)
        return hexlify(mac.digest())

    @classmethod
    def from_settings(cls, settings: Settings) -> CallerSigner:
        return cls(caller_key(settings))

    def sign(self, caller_json: bytes, deadline_ms: int) -> bytes:
        """The signature, as the ASCII bytes that go between quotes in the envelope."""
        return self._digest(caller_json, deadline_ms)

    def verify(self, caller_json: bytes, deadline_ms: object, signature: object) -> bool:
        if type(signature) is not str or not signature.isascii():
            return False  # (a hex signature is ASCII; orjson gives plain str)
        if type(deadline_ms) is not int:  # not a bool, a float or a string
            return False
        return hmac.compare_digest(self._digest(caller_json, deadline_ms), signature.encode())
