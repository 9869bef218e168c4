"""The hub's watch on workers' heartbeats (hub/worker_watch.py), on an injected clock:
when a worker counts as lost, and that the reads in flight are then sent again once."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pydantic import ValidationError

from hub.worker_watch import WorkerWatch
from hubbub.contracts.heartbeat import MISSED_BEATS, WorkerBeat, worker_beat
from hubbub.contracts.subjects import Subjects


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


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


def watching() -> tuple[WorkerWatch, Clock, Resend, Connection]:
    clock, resend, nc = Clock(), Resend(), Connection()
    nc_: Any = nc
    return WorkerWatch(nc_, Subjects(), resend, clock=clock), clock, resend, nc


def beat(worker: str = "w1", every: float = 1.0, *, leaving: bool = False) -> WorkerBeat:
    return WorkerBeat(worker=worker, every=every, leaving=leaving)


def test_a_worker_that_keeps_beating_is_never_lost() -> None:
    watch, clock, resend, _ = watching()
    for _ in range(10):
        watch.beat(beat())
        clock.now += 1.0
        assert watch.sweep() == []
    assert resend.calls == 0


def test_a_worker_silent_for_the_missed_beats_is_lost_and_reads_are_sent_again_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    watch, clock, resend, _ = watching()
    watch.beat(beat("w1"))
    watch.beat(beat("w2"))
    clock.now += MISSED_BEATS * 1.0  # exactly at the limit: not yet
    assert watch.sweep() == []
    watch.beat(beat("w2"))
    clock.now += 0.01
    with caplog.at_level(logging.INFO, logger="hub.worker_watch"):
        assert watch.sweep() == ["w1"]
        assert watch.sweep() == []  # lost once, sent again once
    assert resend.calls == 1
    assert watch.resent == 3
    assert list(watch.alive) == ["w2"]
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == "worker went silent"
    assert (record.workers, record.reads_sent_again) == (["w1"], 3)  # type: ignore[attr-defined]


def test_the_grace_follows_the_workers_own_beat_interval() -> None:
    watch, clock, _, _ = watching()
    watch.beat(beat("slow", every=5.0))
    clock.now += 5.0 * MISSED_BEATS - 0.1
    assert watch.sweep() == []
    clock.now += 0.2
    assert watch.sweep() == ["slow"]


def test_a_worker_that_says_it_is_leaving_is_forgotten_not_lost() -> None:
    watch, clock, resend, _ = watching()
    watch.beat(beat())
    watch.beat(beat(leaving=True))
    clock.now += 60
    assert watch.sweep() == []
    assert resend.calls == 0


def test_nothing_is_lost_while_the_hub_itself_is_cut_from_nats_nor_right_after() -> None:
    watch, clock, resend, nc = watching()
    watch.beat(beat())
    nc.is_connected = False
    clock.now += 30
    assert watch.sweep() == []
    nc.is_connected = True
    nc.stats["reconnects"] += 1
    assert watch.sweep() == []  # a full grace period from the reconnect
    clock.now += MISSED_BEATS * 1.0
    assert watch.sweep() == []
    clock.now += 0.01
    assert watch.sweep() == ["w1"]
    assert resend.calls == 1


def test_a_lost_worker_that_beats_again_is_said_to_be_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    watch, clock, _, _ = watching()
    watch.beat(beat())
    clock.now += 10
    watch.sweep()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="hub.worker_watch"):
        watch.beat(beat())
    assert [r.getMessage() for r in caplog.records] == ["worker is back"]
    assert "w1" in watch.alive
    assert not watch.lost


def test_beats_are_checked_as_a_contract() -> None:
    assert worker_beat.validate_json(b'{"worker": "a1", "every": 1.0}') == beat("a1")
    for bad in (b'{"worker": "", "every": 1}', b'{"worker": "a", "every": 0}', b"{}"):
        with pytest.raises(ValidationError):
            worker_beat.validate_json(bad)
