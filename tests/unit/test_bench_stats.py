"""bench/stats.percentile: nearest rank, q in 0..100."""

from __future__ import annotations

import math

from bench import stats


def test_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert stats.percentile(values, 50) == 50.0  # the 50th of 100
    assert stats.percentile(values, 99) == 99.0
    assert stats.percentile(values, 99.5) == 100.0
    assert stats.percentile(values, 0) == 1.0
    assert stats.percentile(values, 100) == 100.0
    assert stats.percentile([1.0, 2.0, 3.0], 50) == 2.0
    assert math.isnan(stats.percentile([], 50))
