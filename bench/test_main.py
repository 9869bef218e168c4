"""``python -m bench`` (``bin/hubbub bench``) runs every benchmark it is given, though
each ends with its own ``sys.exit(main())``; the command fails naming those that failed.

``python -m pytest bench/test_main.py``.
"""

from __future__ import annotations

import runpy
import sys
from typing import Any

import pytest

from bench import __main__ as bench_command


def test_each_benchmark_runs_after_one_that_exits_and_a_failure_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ran: list[str] = []
    exits = {"bench.fanout": 0, "bench.sockets": 1}

    def run_module(name: str, **_: Any) -> None:
        ran.append(name)
        if name in exits:
            sys.exit(exits[name])

    monkeypatch.setattr(runpy, "run_module", run_module)
    monkeypatch.setattr(sys, "argv", ["bench", "fanout", "sockets", "loss"])
    with pytest.raises(SystemExit) as ended:
        bench_command.main()
    assert ran == ["bench.fanout", "bench.sockets", "bench.loss"]
    assert ended.value.code == "benchmark(s) failed: sockets"
