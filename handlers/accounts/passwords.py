"""Password hashing: argon2id in a bounded thread pool, off the event loop.

One ``PasswordHasher`` per worker process (the ``PASSWORD_HASHER`` resource). Each hash
holds ``memory_kib`` of memory for its duration, so the pool's size bounds both the CPU
and the memory that logins can take; requests beyond it queue.

An unknown email must cost what a known one costs, or response times would tell which
emails have accounts: ``verify_dummy`` verifies against a made-up hash with the current
parameters (random salt, random digest) — one argon2 computation, like a real check,
and none spent at start-up to make it.
"""

from __future__ import annotations

import asyncio
import base64
import os
from concurrent.futures import ThreadPoolExecutor

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from handlers.worker_resources import ResourceKey
from hubbub.config import Settings


class PasswordHasher:
    def __init__(self, engine: argon2.PasswordHasher, *, threads: int = 2) -> None:
        if engine.type is not argon2.Type.ID:
            raise ValueError("passwords are hashed with argon2id")
        self.engine = engine
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="argon2")
        self._dummy = _dummy_hash(engine)

    @classmethod
    def from_settings(cls, settings: Settings) -> PasswordHasher:
        return cls(
            argon2.PasswordHasher(
                time_cost=settings.argon2_time_cost,
                memory_cost=settings.argon2_memory_kib,
                parallelism=settings.argon2_parallelism,
                hash_len=32,
                salt_len=16,
                type=argon2.Type.ID,
            ),
            threads=settings.password_hash_threads,
        )

    async def hash(self, password: str) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.engine.hash, password)

    async def verify(self, encoded: str, password: str) -> bool:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._verify, encoded, password)

    async def verify_dummy(self, password: str) -> None:
        """Spend what a real check costs, for a login whose account does not exist."""
        await self.verify(self._dummy, password)

    def needs_rehash(self, encoded: str) -> bool:
        """True when ``encoded`` was made with other parameters than the current ones."""
        try:
            return self.engine.check_needs_rehash(encoded)
        except InvalidHashError:
            return True

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _verify(self, encoded: str, password: str) -> bool:
        try:
            return self.engine.verify(encoded, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode().rstrip("=")


def _dummy_hash(engine: argon2.PasswordHasher) -> str:
    return (
        f"$argon2id$v={argon2.low_level.ARGON2_VERSION}"
        f"$m={engine.memory_cost},t={engine.time_cost},p={engine.parallelism}"
        f"${_b64(os.urandom(engine.salt_len))}${_b64(os.urandom(engine.hash_len))}"
    )


PASSWORD_HASHER: ResourceKey[PasswordHasher] = ResourceKey(
    "password_hasher", PasswordHasher.from_settings
)
