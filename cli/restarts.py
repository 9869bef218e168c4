"""When to start a supervised process again, and when to give up (Erlang/OTP's
one-for-one restart strategy, with a backoff).

A process that exits is started again after a delay that doubles with each restart in a
row (``backoff_s``, then twice, four times… at most ``backoff_max_s``); a run that lasted
``stable_s`` or longer before it ended starts the doubling over. More than ``intensity``
restarts of one process within ``period_s`` seconds means restarting does not help: the
supervisor gives up (and stops everything). Pure logic on an injected clock.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    intensity: int = 5  # restarts allowed within period_s; 0: never restart
    period_s: float = 60.0
    backoff_s: float = 0.5  # the first delay
    backoff_max_s: float = 10.0
    stable_s: float = 10.0  # a run at least this long resets the delay


@dataclass(frozen=True, slots=True)
class Restart:
    """Start the process again at clock time ``at``, ``delay_s`` from now."""

    number: int  # restarts of this process so far, this one included
    delay_s: float
    at: float


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Restarting does not help: ``restarts`` restarts within ``period_s`` already."""

    restarts: int
    period_s: float


class RestartHistory:
    """One supervised process's restarts: call ``started()`` whenever it is started and
    ``exited()`` when it has ended on its own, which says what to do next."""

    def __init__(self, policy: RestartPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self._clock = clock
        self._recent: deque[float] = deque()  # clock times of the restarts in the window
        self._in_a_row = 0  # restarts since the last stable run
        self._started_at = clock()
        self.restarts = 0

    def started(self) -> None:
        self._started_at = self._clock()

    def exited(self) -> Restart | GiveUp:
        now = self._clock()
        policy = self.policy
        if now - self._started_at >= policy.stable_s:
            self._in_a_row = 0
        while self._recent and now - self._recent[0] >= policy.period_s:
            self._recent.popleft()
        if len(self._recent) >= policy.intensity:
            return GiveUp(len(self._recent), policy.period_s)
        self._recent.append(now)
        delay = min(policy.backoff_s * 2**self._in_a_row, policy.backoff_max_s)
        self._in_a_row += 1
        self.restarts += 1
        return Restart(self.restarts, delay, now + delay)
