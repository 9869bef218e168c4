"""The publish API's bookkeeping: a key's budget, and the misses counted ahead while a
key is asked about."""

from __future__ import annotations

import asyncio
import time

import pytest

from hub.publish import UNKNOWN_KEYS_PER_MINUTE, KeyBudgets, KeyCache
from hubbub.bus import Reply
from hubbub.config import Rate
from hubbub.contracts.api.apikeys import ServiceIdentity
from hubbub.contracts.errors import RateLimited, TooLarge, Unauthorized, Unavailable


class TestKeyBudgets:
    def test_a_publication_not_stored_is_given_back(self) -> None:
        budgets = KeyBudgets(Rate(2, 3600), Rate(100, 3600))
        budgets.spend("k", 60)
        budgets.give_back("k", 60)  # JetStream refused it
        budgets.spend("k", 60)
        budgets.spend("k", 40)
        with pytest.raises(RateLimited) as refused:
            budgets.spend("k", 1)
        assert refused.value.details["retry_after"] >= 1

    def test_bytes_refused_spend_no_publication(self) -> None:
        budgets = KeyBudgets(Rate(2, 3600), Rate(100, 3600))
        budgets.spend("k", 90)
        with pytest.raises(RateLimited):
            budgets.spend("k", 20)
        budgets.spend("k", 10)  # the refused one took no publication

    def test_more_than_the_whole_budget_is_too_large(self) -> None:
        with pytest.raises(TooLarge):
            KeyBudgets(Rate(2, 60), Rate(100, 60)).spend("k", 101)


def settled(result: object = None, error: BaseException | None = None) -> asyncio.Future[Reply]:
    answer: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
    if error is not None:
        answer.set_exception(error)
    else:
        answer.set_result(Reply(b"", result))
    return answer


class TestMissesCountedAhead:
    async def test_a_known_key_or_no_answer_gives_the_miss_back(self) -> None:
        cache = KeyCache()
        identity = ServiceIdentity(name="svc", channels=["public:*"])
        for n, answer in enumerate([settled(identity), settled(error=Unavailable())]):
            cache.count_miss("ip", 0.0)
            cache.answered(f"key-{n}", "ip", 0.0, answer)
        assert cache.misses["ip"][0] == 0
        assert "key-0" in cache.known
        assert "key-1" not in cache.known

    async def test_an_unknown_key_keeps_its_miss_and_is_held_unknown(self) -> None:
        cache = KeyCache()
        for n in range(UNKNOWN_KEYS_PER_MINUTE):
            cache.count_miss("ip", 0.0)
            cache.answered(f"key-{n}", "ip", 0.0, settled(error=Unauthorized()))
        assert len(cache.unknown) == UNKNOWN_KEYS_PER_MINUTE
        with pytest.raises(RateLimited):
            cache.check_budget("ip", 1.0)

    async def test_a_key_revoked_while_asked_about_is_not_remembered(self) -> None:
        cache = KeyCache()
        now = time.monotonic()
        cache.count_miss("ip", now)
        cache.revoked("key", now)
        cache.answered("key", "ip", now, settled(ServiceIdentity(name="svc", channels=[])))
        assert "key" not in cache.known
