"""The hub's watch on workers' heartbeats (hub/worker_watch.py), on an injected clock:
when a worker counts as lost, and that the reads in flight are then sent again once."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pydantic import ValidationError

from hub.worker_watch import STALL_S, SWEEP_S, WorkerWatch
from hubbub.contracts.heartbeat import MISSED_BEATS, WorkerBeat, worker_beat
from hubbub.contracts.subjects import Subjects
from tests.support.clock import Clock


class Connection:
    def __init__(self) -> None:
        self.is_connected = True
        self.stats = {"reconnects": 0}


class Resend:
    def __init__(self, waiting: int = 3) -> None:
        self.calls = 0
        self.waiting = waiting

    def __call__(self) -> int:
        self.calls += 1
        return self.waiting


class Watching:
    """A watch, its clock, its connection and its resend; ``run`` sweeps on schedule."""

    def __init__(self) -> None:
        self.clock, self.resend, self.nc = Clock(), Resend(), Connection()
        nc: Any = self.nc
        self.watch = WorkerWatch(nc, Subjects(), self.resend, clock=self.clock)

    def run(self, seconds: float) -> list[str]:
        """Sweep every ``SWEEP_S`` for ``seconds``; the workers lost meanwhile."""
        lost: list[str] = []
        for _ in range(round(seconds / SWEEP_S)):
            self.clock.now += SWEEP_S
            lost += self.watch.sweep()
        return lost


def beat(worker: str = "w1", every: float = 1.0, *, leaving: bool = False) -> WorkerBeat:
    return WorkerBeat(worker=worker, every=every, leaving=leaving)


GRACE = MISSED_BEATS * 1.0  # of a worker beating every second


def test_a_worker_that_keeps_beating_is_never_lost() -> None:
    w = Watching()
    for _ in range(10):
        w.watch.beat(beat())
        assert w.run(1.0) == []
    assert w.resend.calls == 0


def test_a_worker_silent_for_the_missed_beats_is_lost_and_reads_are_sent_again_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    w = Watching()
    w.watch.beat(beat("w1"))
    w.watch.beat(beat("w2"))
    assert w.run(GRACE) == []  # exactly at the limit: not yet
    w.watch.beat(beat("w2"))
    with caplog.at_level(logging.INFO, logger="hub.worker_watch"):
        assert w.run(SWEEP_S) == ["w1"]
        assert w.run(1.0) == []  # lost once, sent again once
    assert w.resend.calls == 1
    assert w.watch.resent == 3
    assert list(w.watch.alive) == ["w2"]
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == "worker went silent"
    assert (record.workers, record.reads_sent_again) == (["w1"], 3)  # type: ignore[attr-defined]


def test_the_grace_follows_the_workers_own_beat_interval() -> None:
    w = Watching()
    w.watch.beat(beat("slow", every=5.0))
    assert w.run(5.0 * MISSED_BEATS) == []
    assert w.run(SWEEP_S) == ["slow"]


def test_a_worker_that_says_it_is_leaving_is_forgotten_not_lost() -> None:
    w = Watching()
    w.watch.beat(beat())
    w.watch.beat(beat(leaving=True))
    assert w.run(60) == []
    assert w.resend.calls == 0


def test_nothing_is_lost_while_the_hub_itself_is_cut_from_nats_nor_right_after() -> None:
    w = Watching()
    w.watch.beat(beat())
    w.nc.is_connected = False
    assert w.run(30) == []
    w.nc.is_connected = True
    w.nc.stats["reconnects"] += 1
    assert w.run(SWEEP_S + GRACE) == []  # a full grace period from the reconnect
    assert w.run(SWEEP_S) == ["w1"]
    assert w.resend.calls == 1


def test_a_stall_of_the_hubs_own_loop_is_no_workers_silence() -> None:
    """Its beats may be waiting unread in the hub's socket: a fresh grace, not a loss."""
    w = Watching()
    w.watch.beat(beat())
    w.clock.now += STALL_S + GRACE  # no sweep ran: the hub's loop was blocked
    assert w.watch.sweep() == []
    assert w.run(GRACE) == []
    assert w.run(SWEEP_S) == ["w1"]


def test_a_lost_worker_that_beats_again_is_said_to_be_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    w = Watching()
    w.watch.beat(beat())
    assert w.run(10) == ["w1"]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="hub.worker_watch"):
        w.watch.beat(beat())
    assert [r.getMessage() for r in caplog.records] == ["worker is back"]
    assert "w1" in w.watch.alive
    assert not w.watch.lost


def test_beats_are_checked_as_a_contract() -> None:
    assert worker_beat.validate_json(b'{"worker": "a1", "every": 1.0}') == beat("a1")
    for bad in (b'{"worker": "", "every": 1}', b'{"worker": "a", "every": 0}', b"{}"):
        with pytest.raises(ValidationError):
            worker_beat.validate_json(bad)
