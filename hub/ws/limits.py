"""Per-connection limits: a token bucket for commands, and when refusing turns to closing."""

from __future__ import annotations

import enum
import time


class TokenBucket:
    """``rate`` tokens per second, up to ``burst``; one token per command."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = time.monotonic()

    def take(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def retry_after(self) -> float:
        return max(0.0, (1.0 - self.tokens) / self.rate)


class Admission(enum.Enum):
    ADMIT = "admit"
    REFUSE = "refuse"  # answer rate_limited, keep the socket
    CLOSE = "close"  # the client keeps on flooding: close 4008


class CommandLimiter:
    """The command rate of one socket.

    Over the rate, each command is refused; after twice the burst refusals the socket is
    closed. The refusal count starts again only once the client has slowed down enough
    to bank half a burst — not at the next admitted command: commands are read as fast
    as the hub handles them, so on a busy hub a flood arrives spread out, a token
    refills between reads, and a count reset by every admission would never reach the
    limit however hard the client floods.
    """

    __slots__ = ("bucket", "flood_limit", "refused")

    def __init__(self, rate: float, burst: int) -> None:
        self.bucket = TokenBucket(rate, burst)
        self.flood_limit = 2 * burst
        self.refused = 0

    def admit(self, now: float | None = None) -> Admission:
        bucket = self.bucket
        if bucket.take(now):
            if bucket.tokens + 1.0 >= bucket.burst / 2:  # it had half a burst banked
                self.refused = 0
            return Admission.ADMIT
        self.refused += 1
        return Admission.CLOSE if self.refused > self.flood_limit else Admission.REFUSE

    def retry_after(self) -> float:
        return self.bucket.retry_after()
