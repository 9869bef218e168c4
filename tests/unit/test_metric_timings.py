"""``Timings``, the hand-kept latency histogram, is exposed exactly as the
``prometheus_client`` histogram it stands in for: same series, labels, buckets, counts
and sums."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from hubbub.metric_buckets import LATENCY_BUCKETS, Timings

OBSERVED = [
    ("users.me", "ok", 0.0004),
    ("users.me", "ok", 0.001),  # on a bound: counted in its bucket (le)
    ("users.me", "ok", 0.3),
    ("users.me", "timeout", 31.0),  # above every bound: only in +Inf
    ("resources.get", "not_found", 0.002),
]


def test_timings_are_exposed_as_the_histogram_they_replace() -> None:
    reference = CollectorRegistry()
    histogram = Histogram(
        "hubbub_x_seconds",
        "Help text.",
        ["method", "outcome"],
        buckets=LATENCY_BUCKETS,
        registry=reference,
    )
    kept = CollectorRegistry(auto_describe=True)
    timings = Timings("hubbub_x_seconds", "Help text.", ("method", "outcome"))
    kept.register(timings)
    for method, outcome, seconds in OBSERVED:
        histogram.labels(method, outcome).observe(seconds)
        timings.timing(method, outcome).observe(seconds)

    def lines(registry: CollectorRegistry) -> list[str]:
        text = generate_latest(registry).decode()
        return sorted(line for line in text.splitlines() if "_created" not in line)

    assert lines(kept) == lines(reference)


def test_a_series_is_made_once_and_kept() -> None:
    timings = Timings("hubbub_y_seconds", "Help.", ("a", "b"))
    assert timings.timing("x", "ok") is timings.timing("x", "ok")
    assert timings.timing("x", "ok") is not timings.timing("x", "error")
