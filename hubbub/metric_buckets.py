"""The latency histograms' buckets, shared by the hub's and the workers' metrics so that
their series can be compared bucket for bucket."""

from __future__ import annotations

from typing import Final

# Seconds: from a cached read (~1 ms) to the longest operation timeouts (30 s).
LATENCY_BUCKETS: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
