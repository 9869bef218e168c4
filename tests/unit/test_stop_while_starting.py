"""A stop (SIGINT, SIGTERM) that comes while ``hubbub up`` starts cuts the start short
where it is — even inside code that catches every ``Exception`` (alembic, SQLAlchemy,
asyncio's tasks do), which must not take the stop for an error of its own and go on."""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path

from cli.failures import STOPPED
from cli.supervisor import Supervisor
from hubbub.config import Settings


class StoppedInsideExceptException(Supervisor):
    """A start whose one step is stopped while it runs, and that catches ``Exception``."""

    went_on = False

    def _start_and_watch(self) -> int:
        with contextlib.suppress(Exception):
            signal.raise_signal(signal.SIGTERM)  # the handler runs before this returns
        self.went_on = True
        return 0


def test_a_stop_is_not_swallowed_by_except_exception(tmp_path: Path) -> None:
    up = StoppedInsideExceptException(Settings(state_dir=tmp_path / "state"), frontend=False)
    assert up.run() == STOPPED
    assert not up.went_on
