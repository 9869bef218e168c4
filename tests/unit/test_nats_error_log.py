"""nats-py's error callback, logged without repeating itself: an outage is the one
"nats disconnected" line, and an error that comes again and again is a line a minute."""

from __future__ import annotations

import logging

import pytest
from nats import errors as nats_errors

from hubbub.natsconn import REPEAT_EVERY_S, ErrorLog


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "hubbub.natsconn" and r.levelno >= logging.WARNING
    ]


@pytest.fixture
def errors() -> ErrorLog:
    return ErrorLog(Clock())


def test_a_lost_connection_and_failed_reconnect_attempts_are_not_warnings(
    errors: ErrorLog, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="hubbub.natsconn")
    errors(ConnectionResetError("Connection lost"))
    errors(nats_errors.UnexpectedEOF())
    for _ in range(20):
        errors(ConnectionRefusedError(111, "Connect call failed"))
    errors(TimeoutError())

    assert warnings(caplog) == []
    assert sum(r.levelno == logging.DEBUG for r in caplog.records) == 23
    # The first is why the connection went; the next outage starts afresh.
    assert errors.why_lost() == "ConnectionResetError: Connection lost"
    assert errors.why_lost() == "no error given"


def test_the_same_error_again_is_counted_and_said_with_the_next_line(
    errors: ErrorLog, caplog: pytest.LogCaptureFixture
) -> None:
    clock = errors.clock
    assert isinstance(clock, Clock)
    denied = nats_errors.Error("nats: permissions violation for publish to x")
    errors(denied)
    for _ in range(5):
        clock.now += 1
        errors(denied)
    clock.now += REPEAT_EVERY_S
    errors(denied)

    assert warnings(caplog) == [
        "nats error: nats: permissions violation for publish to x",
        "nats error: nats: permissions violation for publish to x "
        "(5 more like it since the last line)",
    ]


def test_dropped_messages_are_a_line_per_subject_not_per_message(
    errors: ErrorLog, caplog: pytest.LogCaptureFixture
) -> None:
    for subject in ("live.a", "live.a", "live.b", "live.a"):
        errors(nats_errors.SlowConsumerError(subject=subject, reply="", sid=1, sub=None))

    assert warnings(caplog) == [
        "nats error: slow consumer: dropping messages on live.a",
        "nats error: slow consumer: dropping messages on live.b",
    ]


def test_different_errors_are_each_said(errors: ErrorLog, caplog: pytest.LogCaptureFixture) -> None:
    errors(nats_errors.AuthorizationError())
    errors(nats_errors.Error("nats: maximum payload exceeded"))

    assert len(warnings(caplog)) == 2
