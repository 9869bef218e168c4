"""Password hashing: argon2id in a bounded thread pool, off the event loop.

One ``PasswordHasher`` per worker process (the ``PASSWORD_HASHER`` resource). Each hash
holds ``memory_kib`` of memory for its duration, so the pool's size bounds both the CPU
and the memory that logins can take. Requests beyond it queue, but only ``waiting`` of
them (``HUBBUB_PASSWORD_HASH_QUEUE``): one more is refused at once, ``unavailable`` with
reason "busy" (nothing has been done: the hub sends it to another worker). A queue
without bound would hold every request that waits in it (and its caller, and its place
in the worker's concurrency) for as long as the queue takes to drain. Requests wait here
holding no transaction slot (workers/execution.py): they hash ``outside_transaction``
(handlers/context.py).

Passwords are hashed NFKC-normalised (``normalized``), so one typed on another keyboard
or system — composed or decomposed accents, full-width letters — is the same password.
Hashes made before that were of the password as typed: ``match`` tries the normalised
form first and, only when normalising changes the password, the form as typed; a match
of that one (``Match.AS_TYPED``) is upgraded at login like a hash with old parameters.

An unknown email must cost what a known one costs, or response times would tell which
emails have accounts: ``verify_dummy`` verifies against a made-up hash with the current
parameters (random salt, random digest) — as many argon2 computations as a real check
that fails (one, or two for a password that normalising changes), and none spent at
start-up to make it.
"""

from __future__ import annotations

import asyncio
import base64
import enum
import os
import threading
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from handlers.worker_resources import ResourceKey
from hubbub.config import Settings
from hubbub.contracts.errors import NOT_STARTED, Unavailable

T = TypeVar("T")


def normalized(password: str) -> str:
    """The password as it is checked and hashed: NFKC (Unicode's compatibility form)."""
    return unicodedata.normalize("NFKC", password)


class Match(enum.Enum):
    NONE = "none"
    NORMALIZED = "normalized"
    AS_TYPED = "as_typed"  # a hash made before passwords were normalised: upgrade it


class PasswordHasher:
    def __init__(
        self, engine: argon2.PasswordHasher, *, threads: int = 2, waiting: int = 2
    ) -> None:
        if engine.type is not argon2.Type.ID:
            raise ValueError("passwords are hashed with argon2id")
        self.engine = engine
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="argon2")
        self._dummy = _dummy_hash(engine)
        self.capacity = threads + waiting  # computations running or queued, at most
        self._in_flight = 0
        self._lock = threading.Lock()  # the count goes down in the pool's threads

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
            waiting=settings.password_hash_queue,
        )

    @property
    def in_flight(self) -> int:
        """Computations running or queued now."""
        return self._in_flight

    def check_room(self) -> None:
        """``Unavailable`` (busy) if a computation asked for now would be refused: for a
        caller to refuse before doing anything else."""
        if self._in_flight >= self.capacity:
            raise _busy()

    async def hash(self, password: str) -> str:
        return await self._run(self.engine.hash, normalized(password))

    async def match(self, encoded: str, password: str) -> Match:
        """Whether ``password`` is the one ``encoded`` was made of, and in which form.

        Both forms are checked in one computation of the pool's: "busy" can only come
        before any check has run, never between them — a wrong guess whose first check
        ran must be answered as wrong (and stay counted), not as busy (taken back)."""
        return await self._run(self._match, encoded, password)

    def _match(self, encoded: str, password: str) -> Match:
        normal = normalized(password)
        if self._verify(encoded, normal):
            return Match.NORMALIZED
        if normal != password and self._verify(encoded, password):
            return Match.AS_TYPED
        return Match.NONE

    async def verify(self, encoded: str, password: str) -> bool:
        return await self.match(encoded, password) is not Match.NONE

    async def verify_dummy(self, password: str) -> None:
        """Spend what a failed real check costs, for a login whose account does not exist."""
        await self.match(self._dummy, password)

    def needs_rehash(self, encoded: str) -> bool:
        """True when ``encoded`` was made with other parameters than the current ones."""
        try:
            return self.engine.check_needs_rehash(encoded)
        except InvalidHashError:
            return True

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _run(self, function: Callable[..., T], *args: str) -> asyncio.Future[T]:
        """``function(*args)`` in the pool; ``Unavailable`` (busy) at once when as many
        computations as it may hold are running or queued already."""
        with self._lock:
            if self._in_flight >= self.capacity:
                raise _busy()
            self._in_flight += 1
        try:
            job = self._executor.submit(function, *args)
        except BaseException:
            self._done()
            raise
        # Done when it has run — or was cancelled before it began; a computation that
        # has begun runs to its end although its caller gave up, and counts until then.
        job.add_done_callback(self._done)
        return asyncio.wrap_future(job)

    def _done(self, job: object = None) -> None:
        with self._lock:
            self._in_flight -= 1

    def _verify(self, encoded: str, password: str) -> bool:
        try:
            return self.engine.verify(encoded, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


def _busy() -> Unavailable:
    return Unavailable("the worker is busy checking passwords; retry shortly", reason=NOT_STARTED)


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
