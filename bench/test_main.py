"""``python -m bench`` (``bin/hubbub bench``) runs every benchmark it is given, though
each ends with its own ``sys.exit(main())``; the command fails naming those that failed.
``--help`` lists them; options after one benchmark's name are that benchmark's.

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


def test_help_lists_the_benchmarks_and_how_to_get_the_options_of_each(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["bench", "--help"])
    bench_command.main()  # no SystemExit: a success
    shown = capsys.readouterr().out
    assert "bin/hubbub bench NAME --help" in shown
    assert f"benchmarks: {', '.join(bench_command.BENCHMARKS)}" in shown


def test_options_after_one_benchmark_name_are_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[list[str]] = []
    monkeypatch.setattr(runpy, "run_module", lambda name, **_: ran.append(list(sys.argv)))
    monkeypatch.setattr(sys, "argv", ["bench", "fanout", "--target", "hubbub", "--help"])
    bench_command.main()
    assert ran == [["bench.fanout", "--target", "hubbub", "--help"]]


@pytest.mark.parametrize(
    ("argv", "refusal"),
    [
        (["fanout", "sockets", "--target", "hubbub"], "go after the name of one benchmark"),
        (["--target", "hubbub"], "go after the name of one benchmark"),
        (["fanout", "nope"], "unknown benchmark(s) ['nope']"),
    ],
)
def test_what_names_no_benchmark_or_options_for_several_is_refused(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], refusal: str
) -> None:
    monkeypatch.setattr(runpy, "run_module", lambda name, **_: pytest.fail(f"ran {name}"))
    monkeypatch.setattr(sys, "argv", ["bench", *argv])
    with pytest.raises(SystemExit) as ended:
        bench_command.main()
    assert refusal in str(ended.value.code)
