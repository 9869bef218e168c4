"""A socket's command limiter admits exactly the commands its token bucket has tokens
for, and keeps the bucket as ``TokenBucket.take`` would, whatever the pace."""

from __future__ import annotations

import random

from hub.ws.limits import Admission, CommandLimiter, TokenBucket


def test_the_limiter_admits_as_its_token_bucket_takes() -> None:
    pace = random.Random(14)
    limiter = CommandLimiter(rate=50.0, burst=20)
    bucket = TokenBucket(rate=50.0, burst=20)
    bucket.stamp = limiter.stamp
    now = limiter.stamp
    for _ in range(5_000):
        now += pace.choice((0.0, 0.0, 0.001, 0.01, 0.05, 0.5))
        admitted = limiter.admit(now) is Admission.ADMIT
        assert admitted == bucket.take(now)
        assert (limiter.tokens, limiter.stamp) == (bucket.tokens, bucket.stamp)
