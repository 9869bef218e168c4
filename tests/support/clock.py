"""An injected clock for tests of timing logic: it moves only when the test says so."""

from __future__ import annotations


class Clock:
    """Called, it answers ``now``; ``advance`` (or setting ``now``) moves it."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
