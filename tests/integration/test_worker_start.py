"""A worker that starts against a NATS whose max_payload is below the largest answer it
may have to send says so at once, as an error: an operator who lowered it is told."""

from __future__ import annotations

import logging

import pytest

from hubbub.config import Settings
from tests.support import ops
from workers import app
from workers.app import check_max_payload, worker_running


def test_a_max_payload_below_the_largest_answer_is_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="workers.app"):
        assert check_max_payload(app.LARGEST_REPLY_BYTES)
        assert not caplog.records
        assert not check_max_payload(app.LARGEST_REPLY_BYTES - 1)
    [line] = caplog.records
    assert line.levelno == logging.ERROR
    assert "Raise max_payload" in line.getMessage()


async def test_the_worker_checks_its_nats_max_payload_as_it_starts(
    settings: Settings, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The test's NATS has the default 1 MiB: the worker is made to need 2."""
    monkeypatch.setattr(app, "LARGEST_REPLY_BYTES", 2 * 1024 * 1024)
    with caplog.at_level(logging.INFO, logger="workers.app"):
        async with worker_running(settings, ops.registry_with_tests()) as worker:
            errors = [r for r in caplog.records if r.levelno == logging.ERROR]
            assert [r.__dict__["max_payload"] for r in errors] == [worker.service.nc.max_payload]
