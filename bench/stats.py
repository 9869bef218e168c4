"""Order statistics of the benchmarks' samples: the one ``percentile`` of bench/."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile of an already sorted sequence, ``q`` in 0..100 (p99 is
    ``q=99``, not 0.99), by nearest rank: the smallest value that at least ``q`` % of the
    values are at or below, i.e. the ``ceil(q / 100 * n)``-th of ``n`` (1-based; the
    first for ``q=0``). Always one of the samples, never interpolated; NaN when there is
    none. Every percentile bench/ prints comes from here."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, math.ceil(q / 100.0 * len(sorted_values)) - 1))
    return float(sorted_values[k])


def latency_summary(samples_ns: Sequence[int]) -> dict[str, float | None]:
    """Count and p50/p90/p99/p99.9/max of latency samples in ms (None: no sample)."""
    s = sorted(samples_ns)
    out: dict[str, float | None] = {"n": len(s)}
    for name, q in (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p999", 99.9)):
        out[name + "_ms"] = round(percentile(s, q) / 1e6, 3) if s else None
    out["max_ms"] = round(s[-1] / 1e6, 3) if s else None
    return out
