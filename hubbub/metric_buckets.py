"""The latency histograms' buckets, shared by the hub's and the workers' metrics so that
their series can be compared bucket for bucket; and ``Timings``, a histogram kept by
hand for what is observed once a request.

A ``prometheus_client`` histogram child's ``observe`` takes a lock and walks its
buckets; ``Timing.observe`` is one bisection and two additions, with no lock: only the
event loop's thread observes and collects. ``Timings`` exposes its series at scrape
time under the same name, labels and buckets as the histogram it replaces.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from itertools import accumulate
from typing import Final

from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

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

# The ``le`` labels as prometheus_client writes them (1.0, not 1).
_BOUNDS: Final = [
    floatToGoString(bound)  # type: ignore[no-untyped-call]
    for bound in LATENCY_BUCKETS
] + ["+Inf"]


class Timing:
    """One series: its bucket counts and sum."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)  # the last: above every bound
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        # The first bound >= seconds: Prometheus's ``le`` (less than or equal).
        self.counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.total += seconds


class Timings(Collector):
    """A latency histogram over ``LATENCY_BUCKETS`` with two labels, whose series are
    made on first use; register it in a registry to expose it."""

    def __init__(self, name: str, documentation: str, labels: tuple[str, str]) -> None:
        self.name = name
        self.documentation = documentation
        self.labels = labels
        self.series: dict[tuple[str, str], Timing] = {}

    def timing(self, first: str, second: str) -> Timing:
        """The series labelled (``first``, ``second``); keep it rather than look it up
        once a request."""
        found = self.series.get((first, second))
        if found is None:
            found = self.series[first, second] = Timing()
        return found

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=list(self.labels))
        for values, timing in sorted(self.series.items()):
            cumulative = list(accumulate(timing.counts))
            buckets = [(_BOUNDS[i], float(cumulative[i])) for i in range(len(_BOUNDS))]
            family.add_metric(list(values), buckets, timing.total)
        yield family
