"""``hubbub up --workers``: a number or ``auto`` (cli/supervisor.py, cli/main.py)."""

from __future__ import annotations

import os
from argparse import ArgumentTypeError

import pytest

from cli.main import build_parser
from cli.supervisor import worker_count


def test_auto_is_one_worker_per_usable_cpu() -> None:
    assert worker_count("auto") == len(os.sched_getaffinity(0))


def test_a_number_is_taken_as_it_is() -> None:
    assert worker_count("3") == 3


@pytest.mark.parametrize("value", ["0", "-1", "many", ""])
def test_anything_else_is_refused(value: str) -> None:
    with pytest.raises(ArgumentTypeError, match="--workers"):
        worker_count(value)


def test_the_up_command_says_why_it_refuses_a_count(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["up", "--workers", "0"])
    assert "--workers takes a number of at least 1, or 'auto'" in capsys.readouterr().err


def test_the_up_command_accepts_auto() -> None:
    args = build_parser().parse_args(["up", "--workers", "auto"])
    assert args.workers == len(os.sched_getaffinity(0))
    assert build_parser().parse_args(["up"]).workers is None  # the setting decides
