"""What a chaos scenario must show: a traceback in the system's logs, or a must-show that
could not be checked (or whose premise did not hold), fails it like a lost event does."""

from __future__ import annotations

from typing import Any, cast

from chaos import scenarios
from chaos.report import Result, table
from chaos.system import LogMark

TRACEBACK_LINE = (
    '{"level":"error","logger":"hub.app","msg":"unexpected error",'
    '"exc":"Traceback (most recent call last):\\n  File \\"x.py\\", line 1\\nKeyError: 1"}\n'
)


def test_a_clean_result_holds() -> None:
    result = Result("worker-kill", requests=10, recovery_s=0.5)
    assert result.violations() == []
    assert "| ok " in table([result])


def test_a_logged_traceback_is_a_violation() -> None:
    result = Result("worker-kill", requests=10, recovery_s=0.5, tracebacks=2)
    assert result.violations() == ["2 traceback(s) logged"]
    assert "| FAIL " in table([result])
    assert "worker-kill: FAIL 2 traceback(s) logged" in table([result])


def test_a_must_show_not_shown_is_a_violation() -> None:
    result = Result("redis-stop", requests=10, recovery_s=0.5)
    result.not_shown.append("no duplicate rows (not counted: the resource list did not answer)")
    assert result.violations() == [
        "not shown: no duplicate rows (not counted: the resource list did not answer)"
    ]


class Logs:
    """What ``_logged`` reads of a ``System``: its logs since a mark."""

    def __init__(self, text: str) -> None:
        self.text = text

    def log_since(self, mark: LogMark) -> str:
        return self.text

    def up_running(self) -> bool:
        return True


def test_the_tracebacks_in_a_scenario_s_logs_are_counted_json_or_text() -> None:
    text = "plain line\n" + TRACEBACK_LINE + "Traceback (most recent call last):\n  boom\n"
    result = Result("hub-kill", requests=1, recovery_s=1.0)
    scenarios._logged(cast(Any, Logs(text)), LogMark(0, 0), result)
    assert result.tracebacks == 2
    assert "the system logged 4 lines, 2 tracebacks" in result.notes
    assert result.violations() == ["2 traceback(s) logged"]
