"""The command rate limit of a socket, on a simulated clock: when it refuses, and when
refusing turns into closing (4008); and each user's budget of published bytes."""

from __future__ import annotations

import pytest

from hub.ws.limits import Admission, ByteBudgets, CommandLimiter

RATE, BURST = 100.0, 200


def run(limiter: CommandLimiter, times: list[float]) -> list[Admission]:
    verdicts = []
    for now in times:
        verdict = limiter.admit(now)
        verdicts.append(verdict)
        if verdict is Admission.CLOSE:
            break
    return verdicts


def limiter_at(start: float) -> CommandLimiter:
    limiter = CommandLimiter(RATE, BURST)
    limiter.bucket.stamp = start
    return limiter


def test_a_burst_is_admitted_then_refused() -> None:
    verdicts = run(limiter_at(0.0), [0.0] * 250)
    assert verdicts.count(Admission.ADMIT) == BURST
    assert verdicts[BURST:] == [Admission.REFUSE] * 50


def test_a_flood_read_at_once_is_closed_after_twice_the_burst_refused() -> None:
    verdicts = run(limiter_at(0.0), [i * 0.0001 for i in range(1000)])
    assert verdicts[-1] is Admission.CLOSE
    assert verdicts.count(Admission.REFUSE) == 2 * BURST


def test_a_flood_read_slowly_by_a_busy_hub_is_still_closed() -> None:
    # The hub handles a command every 3 ms, so a token refills between some reads and
    # admitted commands interleave with refused ones: the flood must still end in 4008.
    verdicts = run(limiter_at(0.0), [i * 0.003 for i in range(1000)])
    assert Admission.ADMIT in verdicts[BURST:]
    assert verdicts[-1] is Admission.CLOSE


def test_a_client_just_under_the_rate_is_never_refused() -> None:
    verdicts = run(limiter_at(0.0), [i / (RATE * 0.95) for i in range(6000)])
    assert set(verdicts) == {Admission.ADMIT}


def test_a_client_that_pauses_after_each_refused_burst_is_never_closed() -> None:
    limiter, now, verdicts = limiter_at(0.0), 0.0, []
    for _ in range(20):  # 250 at once (50 refused), then a one-second pause
        verdicts += run(limiter, [now] * 250)
        now += 1.0
    assert Admission.CLOSE not in verdicts
    assert verdicts.count(Admission.REFUSE) > 2 * BURST  # refused often, but it slows down


class TestByteBudgets:
    """A user's budget of published bytes, on a simulated clock: 1,000 bytes per 10 s."""

    def test_spending_the_budget_then_waiting_for_the_refill(self) -> None:
        budgets = ByteBudgets(1000, 10)
        assert [budgets.take("u", 400, now=0.0) for _ in range(2)] == [None, None]
        wait = budgets.take("u", 400, now=0.0)  # 200 left: 200 more take 2 s at 100/s
        assert wait == pytest.approx(2.0)
        assert budgets.take("u", 400, now=1.0) == pytest.approx(1.0)  # nothing was spent
        assert budgets.take("u", 400, now=2.0) is None

    def test_bytes_given_back_can_be_spent_again_up_to_the_budget(self) -> None:
        budgets = ByteBudgets(1000, 10)
        assert budgets.take("u", 800, now=0.0) is None
        budgets.give_back("u", 800)  # not published after all
        assert budgets.take("u", 1000, now=0.0) is None
        budgets.give_back("u", 5000)
        assert budgets.buckets["u"].tokens == 1000

    def test_users_have_budgets_of_their_own(self) -> None:
        budgets = ByteBudgets(1000, 10)
        assert budgets.take("a", 1000, now=0.0) is None
        assert budgets.take("a", 1, now=0.0) is not None
        assert budgets.take("b", 1000, now=0.0) is None

    def test_full_buckets_are_forgotten_and_spent_ones_kept(self) -> None:
        budgets = ByteBudgets(1000, 10)
        budgets.take("idle", 100, now=0.0)
        budgets.take("busy", 900, now=0.0)
        budgets.prune(now=1.0)  # idle refilled its 100 bytes; busy has 200 of 1,000
        assert set(budgets.buckets) == {"busy"}
        assert budgets.take("busy", 300, now=1.0) == pytest.approx(1.0)
