"""Limits of the socket layer: a token bucket for each connection's commands (and when
refusing turns to closing), and each user's budget of published bytes."""

from __future__ import annotations

import enum
import time


class TokenBucket:
    """``rate`` tokens per second, up to ``burst``; ``take`` spends ``cost`` (one per
    command, or one per byte)."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = time.monotonic()

    def refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def take(self, now: float | None = None, cost: float = 1.0) -> bool:
        self.refill(time.monotonic() if now is None else now)
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False

    def retry_after(self, cost: float = 1.0) -> float:
        return max(0.0, (cost - self.tokens) / self.rate)


class Admission(enum.Enum):
    ADMIT = "admit"
    REFUSE = "refuse"  # answer rate_limited, keep the socket
    CLOSE = "close"  # the client keeps on flooding: close 4008


_ADMIT = Admission.ADMIT


class CommandLimiter(TokenBucket):
    """The command rate of one socket: a token bucket of commands, one object per socket
    (it is kept for the socket's whole life).

    Over the rate, each command is refused; after twice the burst refusals the socket is
    closed. The refusal count starts again only once the client has slowed down enough
    to bank half a burst — not at the next admitted command: commands are read as fast
    as the hub handles them, so on a busy hub a flood arrives spread out, a token
    refills between reads, and a count reset by every admission would never reach the
    limit however hard the client floods.
    """

    __slots__ = ("flood_limit", "refused")

    def __init__(self, rate: float, burst: int) -> None:
        super().__init__(rate, burst)
        self.flood_limit = 2 * burst
        self.refused = 0

    @property
    def bucket(self) -> TokenBucket:
        """The limiter's token bucket: the limiter itself."""
        return self

    def admit(self, now: float | None = None) -> Admission:
        # ``take(now)``, inline: this runs for every command of every socket.
        if now is None:
            now = time.monotonic()
        tokens = self.tokens + (now - self.stamp) * self.rate
        if tokens > self.burst:
            tokens = self.burst
        self.stamp = now
        if tokens >= 1.0:
            self.tokens = tokens - 1.0
            if tokens >= self.burst / 2:  # it had half a burst banked
                self.refused = 0
            return _ADMIT
        self.tokens = tokens
        self.refused += 1
        return Admission.CLOSE if self.refused > self.flood_limit else Admission.REFUSE


class ByteBudgets:
    """Each user's budget of published bytes: a bucket of ``count`` bytes refilled at
    ``count`` per ``per_s`` seconds (``HUBBUB_WS_PUBLISH_BYTES_PER_USER``), shared by all
    the user's sockets on this hub. A full bucket is forgotten (``prune``): it would be
    made again the same."""

    __slots__ = ("buckets", "burst", "rate")

    def __init__(self, count: int, per_s: float) -> None:
        self.burst = float(count)
        self.rate = count / per_s
        self.buckets: dict[str, TokenBucket] = {}

    def take(self, user_id: str, size: int, now: float | None = None) -> float | None:
        """Spend ``size`` bytes of ``user_id``'s budget: None if there were enough, else
        the seconds until there will be (nothing is spent then)."""
        now = time.monotonic() if now is None else now
        bucket = self.buckets.get(user_id)
        if bucket is None:
            bucket = self.buckets[user_id] = TokenBucket(self.rate, self.burst)
            bucket.stamp = now
        if bucket.take(now, size):
            return None
        return bucket.retry_after(size)

    def give_back(self, user_id: str, size: int) -> None:
        """Return ``size`` bytes that ``take`` spent on something that did not happen."""
        bucket = self.buckets.get(user_id)
        if bucket is not None:
            bucket.tokens = min(bucket.burst, bucket.tokens + size)

    def prune(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for user_id, bucket in list(self.buckets.items()):
            bucket.refill(now)
            if bucket.tokens >= bucket.burst:
                del self.buckets[user_id]
