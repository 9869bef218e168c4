"""Caller signatures: only the key's holder can make one, for one caller and deadline."""

from __future__ import annotations

import hashlib
import hmac

import orjson
import pytest

from hubbub import callers
from hubbub.callers import CallerSigner, caller_key
from hubbub.config import Settings

CALLER = orjson.dumps({"kind": "user", "user_id": "u1", "role": "member"})
DEADLINE = 1_764_712_345_678


def settings(**kwargs: object) -> Settings:
    return Settings(_env_file=None, **kwargs)  # type: ignore[arg-type]


class TestCallerSigner:
    signer = CallerSigner(b"k" * 32)

    def test_a_signature_verifies_for_its_caller_and_deadline(self) -> None:
        """What sign() makes, verify() accepts, again and again (the cached state)."""
        signature = self.signer.sign(CALLER, DEADLINE).decode()
        assert self.signer.verify(CALLER, DEADLINE, signature)
        assert self.signer.verify(CALLER, DEADLINE, signature)

    @pytest.mark.parametrize(
        ("caller", "deadline"),
        [
            (CALLER.replace(b"u1", b"u2"), DEADLINE),
            (CALLER.replace(b"member", b"admin"), DEADLINE),
            (CALLER, DEADLINE + 1),
        ],
    )
    def test_another_caller_or_deadline_does_not_verify(self, caller: bytes, deadline: int) -> None:
        """The signature covers the caller's every byte and the deadline."""
        signature = self.signer.sign(CALLER, DEADLINE).decode()
        assert not self.signer.verify(caller, deadline, signature)

    def test_a_checked_signature_is_remembered_only_for_its_caller_and_deadline(self) -> None:
        """After a right signature, the same caller and deadline with another signature,
        or another deadline with the same one, are still refused; the right one, again
        accepted."""
        signer = CallerSigner(b"k" * 32)
        signature = signer.sign(CALLER, DEADLINE).decode()
        assert signer.verify(CALLER, DEADLINE, signature)
        forged = signature[:-1] + ("0" if signature[-1] != "0" else "1")
        assert not signer.verify(CALLER, DEADLINE, forged)
        assert not signer.verify(CALLER, DEADLINE, signature.upper())
        assert not signer.verify(CALLER, DEADLINE + 1, signature)
        assert not signer.verify(CALLER.replace(b"u1", b"u2"), DEADLINE, signature)
        assert signer.verify(CALLER, DEADLINE, signature)

    def test_a_wrong_signature_is_not_remembered(self) -> None:
        """A refused signature leaves nothing behind that a later check would trust."""
        signer = CallerSigner(b"k" * 32)
        signature = signer.sign(CALLER, DEADLINE).decode()
        assert not signer.verify(CALLER, DEADLINE, "0" * 64)
        assert not signer.verify(CALLER, DEADLINE, "0" * 64)
        assert signer.verify(CALLER, DEADLINE, signature)

    @pytest.mark.parametrize(
        ("deadline", "signature"),
        [
            (DEADLINE, None),
            (DEADLINE, 42),
            (DEADLINE, ""),
            (DEADLINE, "é" * 64),
            (str(DEADLINE), "x"),
            (True, "x"),
            (float(DEADLINE), "x"),
        ],
    )
    def test_malformed_input_is_refused_not_raised(
        self, deadline: object, signature: object
    ) -> None:
        """Whatever a client puts in the envelope, the answer is False, never an error."""
        assert not self.signer.verify(CALLER, deadline, signature)

    @pytest.mark.parametrize("key", [b"k" * 32, b"k" * 64, b"k" * 100])
    @pytest.mark.parametrize("sha256", ["builtin", "hashlib"])
    def test_the_signature_is_the_documented_hmac(
        self, key: bytes, sha256: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """hex(HMAC-SHA256(key, <caller JSON>|<deadline>)) — what hmac.new gives — with
        CPython's own SHA-256 or hashlib's, and keys shorter and longer than a block."""
        if sha256 == "hashlib":
            monkeypatch.setattr(callers, "_sha256", hashlib.sha256)
        signer = CallerSigner(key)
        expected = hmac.new(key, CALLER + b"|%d" % DEADLINE, hashlib.sha256).hexdigest()
        assert signer.sign(CALLER, DEADLINE).decode() == expected
        assert signer.sign(CALLER, DEADLINE + 1).decode() != expected  # the state is copied
        assert signer.sign(CALLER, DEADLINE).decode() == expected
        assert signer.verify(CALLER, DEADLINE, expected)

    def test_another_key_makes_another_signature(self) -> None:
        """A forger without the key cannot make a signature the workers accept."""
        forged = CallerSigner(b"f" * 32).sign(CALLER, DEADLINE).decode()
        assert not self.signer.verify(CALLER, DEADLINE, forged)


class TestCallerKey:
    def test_derived_from_the_secret_but_not_the_secret(self) -> None:
        """Hubs and workers with one secret share the key; it is not the token key."""
        secret = "s" * 40
        key = caller_key(settings(secret_key=secret))
        assert key == caller_key(settings(secret_key=secret))
        assert key != secret.encode()
        assert key != caller_key(settings(secret_key="t" * 40))

    def test_a_configured_caller_key_wins(self) -> None:
        """HUBBUB_CALLER_KEY overrides the derived key."""
        assert caller_key(settings(secret_key="s" * 40, caller_key="c" * 40)) == b"c" * 40
