"""A caller's signature, reused for the requests of its millisecond, is always the one
HMAC-SHA256 gives for that caller and deadline, whatever order callers and deadlines come
in."""

from __future__ import annotations

import hashlib
import hmac

import orjson

from hubbub.callers import CallerSigner

KEY = b"k" * 32
ALICE = orjson.dumps({"kind": "user", "user_id": "u1", "role": "member"})
BOB = orjson.dumps({"kind": "user", "user_id": "u2", "role": "admin"})


def expected(caller: bytes, deadline: int) -> bytes:
    return hmac.new(KEY, caller + b"|%d" % deadline, hashlib.sha256).hexdigest().encode()


def test_interleaved_callers_and_repeated_deadlines_sign_as_hmac() -> None:
    signer = CallerSigner(KEY)
    sequence = [
        (ALICE, 1000),
        (ALICE, 1000),  # the same millisecond: the same signature
        (BOB, 1000),
        (ALICE, 1001),
        (BOB, 1000),
        (ALICE, 1000),  # an earlier deadline again, after another
        (BOB, 999),
    ]
    for caller, deadline in sequence:
        assert signer.sign(caller, deadline) == expected(caller, deadline)
        assert signer.verify(caller, deadline, expected(caller, deadline).decode())
        assert not signer.verify(caller, deadline + 1, expected(caller, deadline).decode())
