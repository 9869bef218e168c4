"""An rpc's result frame, built in one piece, is the same bytes as framing its reply."""

from __future__ import annotations

import pytest

from hub.ws import frames


@pytest.mark.parametrize("command_id", [0, 7, 123_456_789, 2**53])
@pytest.mark.parametrize("size", [0, 50, 105, 106, 107, 108, 109, 110, 200, 65_500, 65_600])
def test_a_result_frame_is_its_reply_framed(command_id: int, size: int) -> None:
    raw = b'"' + b"x" * size + b'"'
    assert frames.result_frame(command_id, raw) == frames.text_frame(frames.result(command_id, raw))
