"""The rate limits a worker counts in its memory while Redis is away (``LocalWindows``)."""

from __future__ import annotations

import contextlib

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from handlers import ratelimit
from handlers.ratelimit import Limit, LocalWindows
from hubbub.config import Rate
from hubbub.contracts.errors import RateLimited
from tests.support.clock import Clock

ACCOUNT = Rate(3, 3600)  # the victim's lock-out: 3 failures an hour
ACCOUNT_IP = Rate(5, 300)  # what a flood makes one key of per (account, IP)


def counts(windows: LocalWindows, key: str, rate: Rate, times: int) -> list[int]:
    return [windows.hit(key, rate)[0] for _ in range(times)]


class TestWindows:
    def test_a_window_counts_until_it_closes_then_a_new_one_opens(self) -> None:
        clock = Clock()
        windows = LocalWindows(clock=clock)
        assert counts(windows, "k", Rate(2, 60), 3) == [1, 2, 3]
        assert windows.hit("k", Rate(2, 60)) == (4, 60_000)
        clock.advance(60)
        assert windows.hit("k", Rate(2, 60)) == (1, 60_000)

    def test_a_forgiven_attempt_gives_its_place_back(self) -> None:
        windows = LocalWindows(clock=Clock())
        windows.hit("k", Rate(1, 60))
        windows.forgive("k", Rate(1, 60))
        assert windows.hit("k", Rate(1, 60))[0] == 1


class TestFlood:
    """Past ``max_keys`` open windows, a key without one is counted in a window it shares
    with the keys of its limit in its bucket; no open window is dropped."""

    def test_a_flood_of_distinct_keys_does_not_reset_a_locked_out_account(self) -> None:
        clock = Clock()
        windows = LocalWindows(max_keys=100, clock=clock)
        assert counts(windows, "acct:victim", ACCOUNT, 4)[-1] == 4  # past 3: locked out
        assert counts(windows, "ip:attacker", Rate(1000, 300), 1) == [1]
        for n in range(1000):  # distinct (account, IP) keys, one per cheap refused login
            windows.hit(f"acct-ip:{n}:attacker", ACCOUNT_IP)
            windows.hit("ip:attacker", Rate(1000, 300))
        assert windows.hit("acct:victim", ACCOUNT)[0] == 5  # still locked out
        assert windows.hit("ip:attacker", Rate(1000, 300))[0] == 1002  # its own count holds

    def test_keys_past_the_cap_share_a_window_per_limit_and_bucket(self) -> None:
        clock = Clock()
        windows = LocalWindows(max_keys=2, clock=clock, buckets=1)
        windows.hit("a", ACCOUNT_IP)
        windows.hit("b", ACCOUNT_IP)
        shared = [windows.hit(f"new{n}", ACCOUNT_IP)[0] for n in range(6)]
        assert shared == [1, 2, 3, 4, 5, 6]  # the sixth is past 5: refused
        assert windows.hit("other", ACCOUNT)[0] == 1  # another limit's shared window
        assert windows.hit("a", ACCOUNT_IP)[0] == 2  # the keys that have a window keep it

    def test_a_forgiven_attempt_of_a_key_past_the_cap_goes_back_to_the_shared_window(
        self,
    ) -> None:
        windows = LocalWindows(max_keys=1, clock=Clock(), buckets=1)
        windows.hit("a", ACCOUNT_IP)
        assert windows.hit("signed-in", ACCOUNT_IP)[0] == 1
        windows.forgive("signed-in", ACCOUNT_IP)
        assert windows.hit("next", ACCOUNT_IP)[0] == 1

    def test_keys_get_windows_of_their_own_again_once_others_close(self) -> None:
        clock = Clock()
        windows = LocalWindows(max_keys=2, clock=clock, buckets=1)
        windows.hit("short", Rate(5, 60))
        windows.hit("long", ACCOUNT)
        assert windows.hit("shared", Rate(5, 60))[0] == 1
        assert windows.hit("shared too", Rate(5, 60))[0] == 2
        clock.advance(60)  # "short" closed; "long" is still open
        assert windows.hit("own", Rate(5, 60))[0] == 1
        assert windows.hit("own", Rate(5, 60))[0] == 2
        assert windows.hit("long", ACCOUNT)[0] == 2

    def test_a_forgiven_attempt_of_a_key_not_counted_in_the_shared_window_leaves_it(
        self,
    ) -> None:
        """A success forgiven while Redis is away, of an attempt that was counted
        elsewhere (in Redis, before it went): the shared window keeps its count."""
        windows = LocalWindows(max_keys=1, clock=Clock(), buckets=1)
        windows.hit("a", ACCOUNT_IP)
        assert counts(windows, "flood", ACCOUNT_IP, 5)[-1] == 5  # the shared window is full
        windows.forgive("counted-in-redis", ACCOUNT_IP)
        assert windows.hit("next", ACCOUNT_IP)[0] == 6  # refused all the same

    def test_one_flooding_key_spends_only_its_bucket_s_shared_window(self) -> None:
        windows = LocalWindows(max_keys=1, clock=Clock(), buckets=64)
        windows.hit("a", ACCOUNT_IP)
        flooder = "ip:flooder"
        newcomer = next(
            f"ip:{n}" for n in range(1000) if windows.bucket(f"ip:{n}") != windows.bucket(flooder)
        )
        assert counts(windows, flooder, ACCOUNT_IP, 100)[-1] == 100
        assert windows.hit(newcomer, ACCOUNT_IP)[0] == 1

    def test_keys_are_remembered_again_once_the_shared_windows_that_held_them_close(
        self,
    ) -> None:
        """Which keys a shared window counted is remembered for a bounded number of
        keys; a key past that is not forgiven, until closed windows make room."""
        clock = Clock()
        windows = LocalWindows(max_keys=1, clock=clock, buckets=1)
        windows.hit("a", Rate(1000, 3600))  # the one window of its own, open all along
        for n in range(16):  # as many keys as are remembered
            windows.hit(f"k{n}", Rate(100, 60))
        assert windows.hit("unremembered", ACCOUNT_IP)[0] == 1
        windows.forgive("unremembered", ACCOUNT_IP)
        assert windows.hit("next", ACCOUNT_IP)[0] == 2  # not taken back

        clock.advance(60)  # the first shared window closes: room again
        assert windows.hit("remembered", ACCOUNT_IP)[0] == 3
        windows.forgive("remembered", ACCOUNT_IP)
        assert windows.hit("after", ACCOUNT_IP)[0] == 3


class TestRefusedAttempts:
    """While Redis is away, an attempt refused by one limit (per IP, which comes first)
    opens no window for the limits after it."""

    IP = Rate(5, 300)

    async def test_one_ip_trying_many_accounts_does_not_lock_newcomers_out(self) -> None:
        windows = LocalWindows(max_keys=50, clock=Clock())
        # Nothing listens on port 1: Redis is away (refused at once, not tried again).
        redis = Redis.from_url("redis://127.0.0.1:1/0", retry=Retry(NoBackoff(), 0))
        try:
            for n in range(100):  # one IP, a new account each time: refused after 5
                with contextlib.suppress(RateLimited):
                    await ratelimit.hit(
                        redis,
                        [Limit("ip:a", self.IP), Limit(f"acct-ip:{n}:a", ACCOUNT_IP)],
                        windows,
                    )
            # Another IP, another account: counted in windows of its own, let through.
            await ratelimit.hit(
                redis, [Limit("ip:b", self.IP), Limit("acct-ip:x:b", ACCOUNT_IP)], windows
            )
            with pytest.raises(RateLimited):  # the flooder is still refused
                await ratelimit.hit(
                    redis, [Limit("ip:a", self.IP), Limit("acct-ip:y:a", ACCOUNT_IP)], windows
                )
        finally:
            await redis.aclose()
        assert windows.hit("acct-ip:x:b", ACCOUNT_IP)[0] == 2  # its own window
