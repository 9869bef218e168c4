"""`OutputTail` passes a child's output on line by line and keeps its last lines."""

from __future__ import annotations

import io
import os

from cli.embedded.process import OutputTail


def _pipe_with(data: bytes) -> io.BufferedReader:
    """The reading end of a pipe whose writer wrote ``data`` and closed (a child that
    wrote, then exited)."""
    read_fd, write_fd = os.pipe()
    with os.fdopen(write_fd, "wb") as writer:
        writer.write(data)
    return os.fdopen(read_fd, "rb")


def test_every_line_is_echoed_whole_and_the_last_ones_are_kept() -> None:
    lines = [f"line {i}\n".encode() for i in range(30)]
    echo = io.BytesIO()
    tail = OutputTail(_pipe_with(b"".join(lines)), echo, keep=5)
    assert tail.lines(wait=5) == [f"line {i}" for i in range(25, 30)]
    assert echo.getvalue() == b"".join(lines)


def test_a_last_line_without_newline_and_bad_bytes_are_kept() -> None:
    tail = OutputTail(_pipe_with(b"first\r\n\xffsecond"), None)
    assert tail.lines(wait=5) == ["first", "\ufffdsecond"]


def test_a_closed_output_stops_the_echo_not_the_tail() -> None:
    """If the supervisor's own output is gone, the lines are still kept."""
    echo = io.BytesIO()
    echo.close()
    tail = OutputTail(_pipe_with(b"a\nb\n"), echo)
    assert tail.lines(wait=5) == ["a", "b"]
