"""Passwords: the policy, argon2id hashing off the event loop, rehash, the dummy check."""

from __future__ import annotations

import asyncio
import time

import argon2
import pytest

from handlers.accounts.passwords import Match, PasswordHasher
from handlers.accounts.policy import check_password, common_passwords, password_problem
from hubbub.config import Settings
from hubbub.contracts.errors import NOT_STARTED, Unavailable, ValidationFailed
from tests.support.accounts import BlockingArgon2, CountingArgon2
from tests.support.waiting import wait_for


class TestPolicy:
    def test_a_long_uncommon_password_passes(self) -> None:
        assert password_problem("plum-orbit-kettle-42", "ann@example.com") is None

    def test_nine_characters_are_too_few(self) -> None:
        assert password_problem("x7#kq9!zp", "ann@example.com") == (
            "must be at least 10 characters long"
        )

    @pytest.mark.parametrize("password", ["ann@example.com", "ANN@Example.com", "annabelle1"])
    def test_the_email_or_its_local_part_is_refused(self, password: str) -> None:
        email = "annabelle1@example.com" if password == "annabelle1" else "ann@example.com"
        assert password_problem(password, email) == "must not be your email address"

    @pytest.mark.parametrize("password", ["password123", "Qwertyuiop", "iloveyou123", "1234567890"])
    def test_common_passwords_are_refused_whatever_their_case(self, password: str) -> None:
        assert password_problem(password, "ann@example.com") == (
            "is one of the most common passwords; choose another"
        )

    @pytest.mark.parametrize(
        ("password", "problem"),
        [
            (" " * 10, "must not be only spaces"),
            ("\u00a0 \u3000 \u2003 \u00a0 \u3000 ", "must not be only spaces"),
            ("\u200b" * 10, "must be at least 10 characters long"),
            ("abc" + "\u200b" * 7, "must be at least 10 characters long"),
            ("aaaaaaaaaa", "must not be one character repeated"),
            ("1111111111", "must not be one character repeated"),
            (" ZZZZZZZZZZZ ", "must not be one character repeated"),
            ("0123456789", "must not be a run of consecutive characters"),
            ("abcdefghij", "must not be a run of consecutive characters"),
            ("ABCDEFGHIJKL", "must not be a run of consecutive characters"),
            ("9876543210", "must not be a run of consecutive characters"),
            ("\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19", "must not be a run"),
            ("\uff50\uff41\uff53\uff53\uff57\uff4f\uff52\uff44123", "is one of the most common"),
        ],
    )
    def test_weak_shapes_are_refused_after_normalising(self, password: str, problem: str) -> None:
        found = password_problem(password, "ann@example.com")
        assert found is not None
        assert found.startswith(problem)

    @pytest.mark.parametrize(
        "password", ["correct horse battery staple", "0123456789x", "caf\u00e9-au-lait-42"]
    )
    def test_ordinary_passwords_pass(self, password: str) -> None:
        assert password_problem(password, "ann@example.com") is None

    def test_the_bundled_list_holds_thousands_of_long_entries(self) -> None:
        passwords = common_passwords()
        assert len(passwords) > 5000
        assert all(len(p) >= 10 for p in passwords)

    def test_a_refusal_is_a_validation_error_on_the_field(self) -> None:
        with pytest.raises(ValidationFailed) as caught:
            check_password("password123", "ann@example.com", field="new_password")
        assert caught.value.details["errors"][0]["loc"] == ["new_password"]


class TestHasher:
    @pytest.fixture
    def engine(self) -> CountingArgon2:
        return CountingArgon2()

    @pytest.fixture
    def hasher(self, engine: CountingArgon2) -> PasswordHasher:
        return PasswordHasher(engine, threads=1)

    async def test_a_hash_verifies_its_password_only(self, hasher: PasswordHasher) -> None:
        encoded = await hasher.hash("plum-orbit-kettle")
        assert encoded.startswith("$argon2id$")
        assert (
            await hasher.verify(encoded, "plum-orbit-kettle"),
            await hasher.verify(encoded, "plum-orbit-kettlE"),
        ) == (True, False)

    async def test_a_garbage_hash_never_verifies(self, hasher: PasswordHasher) -> None:
        assert await hasher.verify("not-a-hash", "anything") is False

    async def test_the_dummy_check_costs_exactly_one_argon2_computation(
        self, hasher: PasswordHasher, engine: CountingArgon2
    ) -> None:
        await hasher.verify_dummy("whatever")
        assert engine.calls == ["verify"]

    async def test_a_password_is_the_same_however_its_accents_were_typed(
        self, hasher: PasswordHasher
    ) -> None:
        """Hashed NFKC: a precomposed é and an e with a combining accent are one password."""
        encoded = await hasher.hash("caf\u00e9-au-lait-42")
        assert (
            await hasher.match(encoded, "cafe\u0301-au-lait-42"),
            await hasher.match(encoded, "caf\u00e9-au-lait-42"),
        ) == (Match.NORMALIZED, Match.NORMALIZED)

    async def test_a_hash_of_the_password_as_typed_still_matches_and_says_so(
        self, hasher: PasswordHasher
    ) -> None:
        """Made before passwords were normalised: matched in the form typed, to upgrade."""
        typed = "cafe\u0301-au-lait-42"
        encoded = argon2.PasswordHasher(memory_cost=1024, time_cost=1, parallelism=1).hash(typed)
        assert (
            await hasher.match(encoded, typed),
            await hasher.match(encoded, "cafe-au-lait-42"),
        ) == (Match.AS_TYPED, Match.NONE)

    @pytest.mark.parametrize(("password", "computations"), [("plain", 1), ("cafe\u0301", 2)])
    async def test_the_dummy_check_costs_what_a_failed_real_one_does(
        self, hasher: PasswordHasher, engine: CountingArgon2, password: str, computations: int
    ) -> None:
        encoded = argon2.PasswordHasher(memory_cost=1024, time_cost=1, parallelism=1).hash("x")
        await hasher.match(encoded, password)
        real = len(engine.calls)
        await hasher.verify_dummy(password)
        assert (real, len(engine.calls) - real) == (computations, computations)

    def test_the_dummy_hash_has_the_current_parameters(self, hasher: PasswordHasher) -> None:
        assert hasher.needs_rehash(hasher._dummy) is False

    async def test_a_hash_with_older_parameters_needs_a_rehash(
        self, hasher: PasswordHasher
    ) -> None:
        old = argon2.PasswordHasher(memory_cost=512, time_cost=1, parallelism=1).hash("pw")
        assert (hasher.needs_rehash(old), hasher.needs_rehash(await hasher.hash("pw"))) == (
            True,
            False,
        )

    def test_settings_choose_the_parameters(self) -> None:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None, argon2_memory_kib=2048, argon2_time_cost=3, argon2_parallelism=2
        )
        engine = PasswordHasher.from_settings(settings).engine
        assert (engine.memory_cost, engine.time_cost, engine.parallelism) == (2048, 3, 2)

    def test_only_argon2id_is_accepted(self) -> None:
        with pytest.raises(ValueError, match="argon2id"):
            PasswordHasher(argon2.PasswordHasher(type=argon2.Type.I))


class TestHasherQueue:
    async def test_past_its_threads_and_queue_a_check_is_refused_busy_at_once(self) -> None:
        engine = BlockingArgon2()
        hasher = PasswordHasher(engine, threads=1, waiting=1)
        encoded = argon2.PasswordHasher(memory_cost=1024, time_cost=1, parallelism=1).hash("pw")
        try:
            running = asyncio.ensure_future(hasher.verify(encoded, "pw"))
            queued = asyncio.ensure_future(hasher.verify(encoded, "pw"))
            await wait_for(engine.entered.is_set, what="the first check runs")
            with pytest.raises(Unavailable) as refused:
                await hasher.verify(encoded, "pw")
            assert (refused.value.details["reason"], hasher.in_flight) == (NOT_STARTED, 2)
            engine.go.set()
            assert await asyncio.gather(running, queued) == [True, True]
            assert (await hasher.verify(encoded, "pw"), hasher.in_flight) == (True, 0)
        finally:
            engine.go.set()
            hasher.close()

    async def test_both_forms_of_a_password_are_checked_in_one_place_of_the_queue(
        self,
    ) -> None:
        """A password that normalising changes (a full-width letter) is checked twice,
        normalised and as typed, in one computation: "busy" cannot come between the
        checks, where a wrong guess whose first check ran would be answered busy (and
        taken back)."""
        engine = BlockingArgon2()
        hasher = PasswordHasher(engine, threads=1, waiting=0)
        encoded = argon2.PasswordHasher(memory_cost=1024, time_cost=1, parallelism=1).hash("pw")
        try:
            checking = asyncio.ensure_future(hasher.match(encoded, "\uff57rong"))
            await wait_for(engine.entered.is_set, what="the first check runs")
            engine.go.set()
            # Without letting the loop run (the check's coroutine cannot go on): once its
            # place is free, another request takes it at once.
            deadline = time.monotonic() + 10
            while hasher.in_flight and time.monotonic() < deadline:
                time.sleep(0.001)
            other = hasher._run(engine.hash, "another request")
            assert await checking is Match.NONE  # wrong, not busy
            assert engine.arrived == ["verify", "verify"]
            await other
        finally:
            engine.go.set()
            hasher.close()

    async def test_a_caller_that_gave_up_frees_its_place(self) -> None:
        """A check cancelled while it waited for a thread is no longer counted."""
        engine = BlockingArgon2()
        hasher = PasswordHasher(engine, threads=1, waiting=1)
        encoded = argon2.PasswordHasher(memory_cost=1024, time_cost=1, parallelism=1).hash("pw")
        try:
            running = asyncio.ensure_future(hasher.verify(encoded, "pw"))
            await wait_for(engine.entered.is_set, what="the first check runs")
            queued = asyncio.ensure_future(hasher.verify(encoded, "pw"))
            await wait_for(lambda: hasher.in_flight == 2, what="the second check waits")
            queued.cancel()
            with pytest.raises(asyncio.CancelledError):
                await queued
            assert hasher.in_flight == 1
            engine.go.set()
            assert await running is True
        finally:
            engine.go.set()
            hasher.close()
