"""A log line for something that can happen many times a second (a refusal, a saturated
pool): at most one line per ``every`` seconds, with the count since the last line.

The count is never left waiting for a next occurrence: what was counted after a line
is logged ``every`` seconds after that line (a timer on the running event loop), so a
burst that stops still shows in the log with its whole count.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

# What a caller logs: a line with the count of occurrences since the last one.
Line = Callable[[int], None]


class LogEvery:
    """One kind of log line, counted: ``add(line)`` for each occurrence."""

    __slots__ = ("_clock", "_count", "_line", "_logged", "_timer", "every")

    def __init__(self, every: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self._clock = clock
        self._count = 0  # occurrences not logged yet
        self._logged: float | None = None  # when the last line was (``clock``)
        self._line: Line | None = None  # the latest occurrence's line, while one waits
        self._timer: asyncio.TimerHandle | None = None

    def add(self, line: Line) -> None:
        """Count one occurrence. ``line(count)`` logs the count since the last line: called
        now when no line was logged in the last ``every`` seconds, else when they have
        passed (the latest occurrence's ``line``). Outside an event loop there is no
        timer: the next occurrence's line tells the count."""
        self._count += 1
        now = self._clock()
        if self._logged is None or now - self._logged >= self.every:
            self._emit(now, line)
            return
        self._line = line
        if self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            self._timer = loop.call_later(self._logged + self.every - now, self.flush)

    def flush(self) -> None:
        """Log a waiting line now (a stop: its timer would not run)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        line = self._line
        if line is not None and self._count:
            self._emit(self._clock(), line)

    def _emit(self, now: float, line: Line) -> None:
        count, self._count, self._logged, self._line = self._count, 0, now, None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        line(count)
