"""nats-py's error callback, logged without repeating itself: an outage is the one
"nats disconnected" line, and an error that comes again and again is a line a minute."""

from __future__ import annotations

import logging
from typing import Any, cast

import pytest
from nats import errors as nats_errors

from hubbub.natsconn import REPEAT_EVERY_S, ErrorLog
from tests.support.clock import Clock


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


class Sub:
    def __init__(self, subject: str) -> None:
        self.subject = subject


def dropped(subject: str, sub: str) -> nats_errors.SlowConsumerError:
    return nats_errors.SlowConsumerError(subject=subject, reply="", sid=1, sub=cast(Any, Sub(sub)))


def test_dropped_messages_are_a_line_per_subscription_not_per_message(
    errors: ErrorLog, caplog: pytest.LogCaptureFixture
) -> None:
    errors(dropped("live.a", "live.a"))
    errors(dropped("live.a", "live.a"))
    errors(dropped("live.b", "live.b"))
    for token in range(5):  # replies to an inbox: a subject each, one subscription
        errors(dropped(f"_INBOX.x.{token}", "_INBOX.x.*"))

    assert warnings(caplog) == [
        "nats error: slow consumer: dropping messages on live.a",
        "nats error: slow consumer: dropping messages on live.b",
        "nats error: slow consumer: dropping messages on _INBOX.x.*",
    ]


def test_different_errors_are_each_said(errors: ErrorLog, caplog: pytest.LogCaptureFixture) -> None:
    errors(nats_errors.AuthorizationError())
    errors(nats_errors.Error("nats: maximum payload exceeded"))
    errors(nats_errors.FlushTimeoutError())  # an OSError, but not the connection going

    assert len(warnings(caplog)) == 3


def test_why_the_connection_went_is_not_an_attempt_of_the_last_outage(errors: ErrorLog) -> None:
    errors(nats_errors.UnexpectedEOF())
    assert errors.why_lost() == "UnexpectedEOF: nats: unexpected EOF"
    errors(ConnectionRefusedError(111, "Connect call failed"))  # a failed attempt
    errors.connected()

    errors(nats_errors.StaleConnectionError())
    assert errors.why_lost() == "StaleConnectionError: nats: stale connection"
