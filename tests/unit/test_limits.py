"""The command rate limit of a socket, on a simulated clock: when it refuses, and when
refusing turns into closing (4008)."""

from __future__ import annotations

from hub.ws.limits import Admission, CommandLimiter

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
