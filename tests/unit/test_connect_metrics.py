"""``Counts``, the hand-kept counter of HTTP requests by status class, is exposed exactly
as the ``prometheus_client`` counter it stands in for (same lines, same order), and a
hub counts a socket's upgrade in it as any other answer: under its status class."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, generate_latest

from hub.metrics import Counts, HubMetrics

HELP = "HTTP requests by status class (2xx, 4xx, 5xx, ...)."
COUNTED = ["2xx", "4xx", "2xx", "1xx", "5xx", "2xx", "1xx"]


def _lines(registry: CollectorRegistry) -> list[str]:
    text = generate_latest(registry).decode()
    return [line for line in text.splitlines() if "_created" not in line]


def test_counts_are_exposed_as_the_counter_they_replace() -> None:
    reference = CollectorRegistry()
    counter = Counter("hubbub_http_requests", HELP, ["status"], registry=reference)
    kept = CollectorRegistry(auto_describe=True)
    counts = Counts("hubbub_http_requests", HELP, "status")
    kept.register(counts)
    assert _lines(kept) == _lines(reference)  # nothing counted yet: no series
    for status in COUNTED:
        counter.labels(status).inc()
        counts.count(status).value += 1
    assert _lines(kept) == _lines(reference)


def test_a_series_is_made_once_and_kept() -> None:
    counts = Counts("hubbub_z", "Help.", "status")
    assert counts.count("2xx") is counts.count("2xx")


def test_an_upgrade_is_counted_under_1xx_beside_the_other_answers() -> None:
    measured = HubMetrics()
    reference = CollectorRegistry()
    counter = Counter("hubbub_http_requests", HELP, ["status"], registry=reference)
    measured.upgraded()
    measured.upgraded()
    measured.http_requests.count("4xx").value += 1  # a refused upgrade (observe_http)
    counter.labels("1xx").inc(2)
    counter.labels("4xx").inc()
    exposed = [line for line in _lines(measured.registry) if "hubbub_http_requests" in line]
    assert exposed == [line for line in _lines(reference) if "hubbub_http_requests" in line]
