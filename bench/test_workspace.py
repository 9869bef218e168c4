"""``bench workspace`` at CI size (not timed): two workers, a few seconds of creates
into one workspace and spread over two; every create answered once, its row written and
its ``resource.created`` event delivered to a subscribed socket; the report prints the
figures beside their targets.

``python -m pytest bench/test_workspace.py``.
"""

from __future__ import annotations

import argparse
import asyncio

import pytest

from bench import workspace
from bench.services import services


@pytest.mark.slow
def test_a_short_run_answers_every_create_and_delivers_every_event(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = argparse.Namespace(rate=20.0, seconds=1.0, workers=2, sockets=2, spread=2)
    with services() as urls:
        results = asyncio.run(workspace.run(args, urls))
    for phase in ("spread", "one_workspace"):
        figures = results[phase]
        assert (figures["sent"], figures["ok"], figures["unavailable"], figures["errors"]) == (
            20,
            20,
            0,
            {},
        )
        assert figures["cpu"]["workers_us"] > 0
    assert results["events"] == {"created_ok": 20, "events_seen": 20, "rows": 20}
    assert results["one_workspace"]["cpu_per_row"]["workers_us"] > 0
    workspace.report(args, results)
    printed = capsys.readouterr().out
    assert "one workspace" in printed
    assert "CPU per row written" in printed
    assert "target p99 <= 100 ms" in printed
    assert "load average" in printed
