"""The rate limits a worker counts in its memory while Redis is away (``LocalWindows``)."""

from __future__ import annotations

from handlers.ratelimit import LocalWindows
from hubbub.config import Rate
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
    """Past ``max_keys`` open windows, a key without one is counted in a window its limit
    shares; no open window is dropped."""

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

    def test_keys_past_the_cap_share_one_window_per_limit(self) -> None:
        clock = Clock()
        windows = LocalWindows(max_keys=2, clock=clock)
        windows.hit("a", ACCOUNT_IP)
        windows.hit("b", ACCOUNT_IP)
        shared = [windows.hit(f"new{n}", ACCOUNT_IP)[0] for n in range(6)]
        assert shared == [1, 2, 3, 4, 5, 6]  # the sixth is past 5: refused
        assert windows.hit("other", ACCOUNT)[0] == 1  # another limit's shared window
        assert windows.hit("a", ACCOUNT_IP)[0] == 2  # the keys that have a window keep it

    def test_a_forgiven_attempt_of_a_key_past_the_cap_goes_back_to_the_shared_window(
        self,
    ) -> None:
        windows = LocalWindows(max_keys=1, clock=Clock())
        windows.hit("a", ACCOUNT_IP)
        assert windows.hit("signed-in", ACCOUNT_IP)[0] == 1
        windows.forgive("signed-in", ACCOUNT_IP)
        assert windows.hit("next", ACCOUNT_IP)[0] == 1

    def test_keys_get_windows_of_their_own_again_once_others_close(self) -> None:
        clock = Clock()
        windows = LocalWindows(max_keys=2, clock=clock)
        windows.hit("short", Rate(5, 60))
        windows.hit("long", ACCOUNT)
        assert windows.hit("shared", Rate(5, 60))[0] == 1
        assert windows.hit("shared too", Rate(5, 60))[0] == 2
        clock.advance(60)  # "short" closed; "long" is still open
        assert windows.hit("own", Rate(5, 60))[0] == 1
        assert windows.hit("own", Rate(5, 60))[0] == 2
        assert windows.hit("long", ACCOUNT)[0] == 2
