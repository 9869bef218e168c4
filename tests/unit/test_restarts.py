"""The restart policy of `hubbub up`: doubling delays, a reset after a stable run, and
giving up after too many restarts in the period (on an injected clock, no sleeps)."""

from __future__ import annotations

from cli.restarts import GiveUp, Restart, RestartHistory, RestartPolicy
from tests.support.clock import Clock


def _history(clock: Clock, **policy: float) -> RestartHistory:
    defaults: dict[str, float] = {
        "intensity": 5,
        "period_s": 60,
        "backoff_s": 0.5,
        "backoff_max_s": 10,
        "stable_s": 10,
    }
    values = defaults | policy
    return RestartHistory(
        RestartPolicy(
            intensity=int(values["intensity"]),
            period_s=values["period_s"],
            backoff_s=values["backoff_s"],
            backoff_max_s=values["backoff_max_s"],
            stable_s=values["stable_s"],
        ),
        clock,
    )


def _crash_after(history: RestartHistory, clock: Clock, ran_s: float) -> Restart | GiveUp:
    """The process ran ``ran_s`` seconds, then exited; what now? (Its restart, if any,
    happens after the delay.)"""
    clock.now += ran_s
    decision = history.exited()
    if isinstance(decision, Restart):
        assert decision.at == clock.now + decision.delay_s
        clock.now = decision.at
        history.started()
    return decision


class TestBackoff:
    def test_the_delay_doubles_with_each_restart_in_a_row_up_to_the_cap(self) -> None:
        """0.5 s, 1 s, 2 s, 4 s, 8 s, then 10 s (the cap), numbered 1, 2, 3…"""
        clock = Clock()
        history = _history(clock, intensity=100, period_s=1)
        decisions = [_crash_after(history, clock, 1) for _ in range(7)]
        assert all(isinstance(d, Restart) for d in decisions)
        assert [d.delay_s for d in decisions if isinstance(d, Restart)] == [
            0.5,
            1,
            2,
            4,
            8,
            10,
            10,
        ]
        assert [d.number for d in decisions if isinstance(d, Restart)] == list(range(1, 8))

    def test_a_stable_run_starts_the_doubling_over(self) -> None:
        """A process that ran for stable_s before it exited waits the first delay again;
        its restart number keeps counting."""
        clock = Clock()
        history = _history(clock)
        _crash_after(history, clock, 1)
        _crash_after(history, clock, 1)
        after_stable = _crash_after(history, clock, 10)
        assert after_stable == Restart(3, 0.5, clock.now)


class TestIntensity:
    def test_more_restarts_than_the_intensity_within_the_period_give_up(self) -> None:
        """Five restarts in 60 s are allowed; the sixth exit within the period gives up."""
        clock = Clock()
        history = _history(clock)
        decisions = [_crash_after(history, clock, 0.1) for _ in range(6)]
        assert all(isinstance(d, Restart) for d in decisions[:5])
        assert decisions[5] == GiveUp(5, 60)

    def test_restarts_older_than_the_period_no_longer_count(self) -> None:
        """A process that exits every 20 s (stable runs) is restarted for ever."""
        clock = Clock()
        history = _history(clock)
        decisions = [_crash_after(history, clock, 20) for _ in range(20)]
        assert all(isinstance(d, Restart) and d.delay_s == 0.5 for d in decisions)

    def test_the_window_slides(self) -> None:
        """Five quick restarts; once the first is a period old, one more is allowed, and
        an exit right after it (five restarts within the period again) gives up."""
        clock = Clock()
        history = _history(clock, backoff_s=1, backoff_max_s=1, stable_s=1000)
        first = clock.now
        for _ in range(5):
            assert isinstance(_crash_after(history, clock, 0), Restart)
        clock.now = first + 60
        assert isinstance(history.exited(), Restart)
        assert isinstance(history.exited(), GiveUp)

    def test_an_intensity_of_zero_never_restarts(self) -> None:
        clock = Clock()
        assert _crash_after(_history(clock, intensity=0), clock, 100) == GiveUp(0, 60)
