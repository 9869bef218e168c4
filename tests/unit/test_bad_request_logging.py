"""A request aiohttp cannot parse is logged as one line, not a traceback."""

from __future__ import annotations

import logging
import sys

from aiohttp.http_exceptions import BadHttpMessage, ContentEncodingError
from aiohttp.web import RequestPayloadError

from hub.main import bad_request_without_traceback


def record_of(error: BaseException) -> logging.LogRecord:
    try:
        raise error
    except BaseException:
        exc_info = sys.exc_info()
    return logging.LogRecord(
        "aiohttp.server", logging.ERROR, __file__, 1, "Error handling request", (), exc_info
    )


def test_an_unparseable_request_is_one_info_line() -> None:
    record = record_of(BadHttpMessage("Invalid header value char"))
    assert bad_request_without_traceback(record)
    assert (record.levelno, record.exc_info) == (logging.INFO, None)
    assert "Invalid header value char" in record.getMessage()


def test_a_body_left_unread_that_does_not_decode_is_one_info_line() -> None:
    """aiohttp reads a refused request's body after the answer; a body that does not
    decode as its Content-Encoding says fails that read."""
    error = RequestPayloadError("400, message: Can not decode content-encoding: gzip")
    error.__cause__ = ContentEncodingError("Can not decode content-encoding: gzip")
    record = record_of(error)
    assert bad_request_without_traceback(record)
    assert (record.levelno, record.exc_info) == (logging.INFO, None)
    assert "Can not decode content-encoding: gzip" in record.getMessage()


def test_other_errors_keep_their_traceback() -> None:
    record = record_of(RuntimeError("a bug"))
    assert bad_request_without_traceback(record)
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
