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

import hashlib
import importlib
from binascii import hexlify
from collections.abc import Callable
from hmac import compare_digest
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


def _builtin_sha256() -> Callable[[bytes], Any]:
    """CPython's own SHA-256 (``_sha2`` since 3.12, ``_sha256`` before), else hashlib's.

    HMAC is built here from two SHA-256 states, as RFC 2104 defines it, because copying
    OpenSSL's HMAC context per request was the dearer part of signing. In ``bench.bus_cpu``
    (c64, auth on, a host shared with test runs) signed requests cost hub and worker
    together 12-14 µs of CPU more than unsigned ones with OpenSSL's HMAC, 8-11 µs with
    these states (a copy is a ``memcpy``; a request hashes two 64-byte blocks); the rest
    is the caller's JSON, parsed and serialized again by the worker.
    """
    for module in ("_sha2", "_sha256"):
        try:
            sha256: Callable[[bytes], Any] = importlib.import_module(module).sha256
        except (ImportError, AttributeError):
            continue
        return sha256
    return hashlib.sha256


_sha256 = _builtin_sha256()
_BLOCK = 64  # SHA-256's block size: HMAC pads the key to it
_IPAD = bytes(x ^ 0x36 for x in range(256))  # translation tables, as hmac.py has them
_OPAD = bytes(x ^ 0x5C for x in range(256))


class CallerSigner:
    """Signs (on hubs) and checks (on workers) an envelope's caller and deadline.

    The inner hash's state after ``<caller JSON>|`` is kept per caller (one connection
    sends many requests as one caller), so a request costs only its deadline's share of
    the inner hash and the outer one; and so is the caller's last signature, which the
    requests of the same caller and millisecond (several, on a busy socket) share. The
    result is HMAC-SHA256 (``hmac.new`` gives the same; a test checks it).

    ``verify`` computes the expected signature with ``sign``, so a worker's checks share
    that memo: the requests of one caller and millisecond hash once. The memo holds only
    signatures ``sign`` computed, keyed on everything they cover, so a check accepts
    exactly what the HMAC would; the comparison is in constant time.
    """

    __slots__ = ("_after_caller", "_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        self._inner = _sha256(key.translate(_IPAD))
        self._outer = _sha256(key.translate(_OPAD))
        # caller JSON → [inner state after it, its last deadline, that deadline's signature]
        self._after_caller: dict[bytes, list[Any]] = {}

    def _state_after(self, caller_json: bytes) -> Any:
        """The inner hash's state after ``<caller JSON>|``."""
        state = self._inner.copy()
        state.update(caller_json + b"|")
        return state

    def sign(self, caller_json: bytes, deadline_ms: int) -> bytes:
        """The signature, as the ASCII bytes that go between quotes in the envelope."""
        cached = self._after_caller.get(caller_json)
        if cached is None:
            if len(self._after_caller) >= _CACHED_CALLERS:
                self._after_caller.clear()
            cached = self._after_caller[caller_json] = [self._state_after(caller_json), None, b""]
        elif cached[1] == deadline_ms:
            return cached[2]  # type: ignore[no-any-return]
        inner = cached[0].copy()
        inner.update(b"%d" % deadline_ms)
        outer = self._outer.copy()
        outer.update(inner.digest())
        signature = hexlify(outer.digest())
        cached[1] = deadline_ms
        cached[2] = signature
        return signature

    @classmethod
    def from_settings(cls, settings: Settings) -> CallerSigner:
        return cls(caller_key(settings))

    def verify(self, caller_json: bytes, deadline_ms: object, signature: object) -> bool:
        """Whether ``signature`` is the hub's for ``caller_json`` and ``deadline_ms``;
        False for anything malformed (never an error)."""
        if type(signature) is not str or not signature.isascii():
            return False  # (a hex signature is ASCII; orjson gives plain str)
        if type(deadline_ms) is not int:  # not a bool, a float or a string
            return False
        # ``sign`` keeps the caller's last deadline and its signature: the requests of
        # one caller and millisecond (sharing the hub's signature) hash once.
        return compare_digest(self.sign(caller_json, deadline_ms), signature.encode())
